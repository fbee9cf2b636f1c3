/** What every VM-suite test checks first: it runs inside test/vm/run's lockdown-free guest. */
import { readFileSync } from 'node:fs';

export function requireGuest(): void {
  const lockdown = readFileSync('/sys/kernel/security/lockdown', 'utf8');
  if (!lockdown.includes('[none]')) {
    throw new Error(`this suite needs a kernel without lockdown (got "${lockdown.trim()}"): run it with make test-vm`);
  }
}

/** The guest kernel's series as test/vm/run booted it ('6.1', '6.12'), for messages. */
export const guestKernel = process.env.SPANBRIDGE_VM_KERNEL ?? 'unknown';
