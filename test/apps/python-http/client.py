"""Test client: on SIGUSR2, requests each URL (urllib, a new connection each) and prints
"done <status>..."; runs until SIGTERM. Usage: client.py URL..."""
import signal
import sys
import threading
import urllib.error
import urllib.request

urls = sys.argv[1:]
go = threading.Event()
signal.signal(signal.SIGUSR2, lambda *_: go.set())
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("ready", flush=True)
while True:
    go.wait()
    go.clear()
    out = []
    for u in urls:
        try:
            with urllib.request.urlopen(u, timeout=10) as r:
                r.read()
                out.append(str(r.status))
        except urllib.error.HTTPError as e:
            out.append(str(e.code))
        except Exception as e:  # noqa: BLE001
            out.append("error:" + type(e).__name__)
    print("done " + " ".join(out), flush=True)
