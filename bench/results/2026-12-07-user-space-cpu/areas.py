import sys, re, collections
# perf script -F tid,ip,sym output -> shares by area (self attribution to nearest JS frame's area, plus inclusive buckets)
samples=[]; cur=None
for line in open(sys.argv[1]):
    if not line.strip():
        if cur: samples.append(cur); cur=None
        continue
    if not line.startswith('\t') and not line.startswith(' '*4):
        cur=(int(line.split()[0]),[]); continue
    s=line.strip().split(None,1)
    if cur is not None: cur[1].append(s[1] if len(s)>1 else '?')
if cur: samples.append(cur)
tids=collections.Counter(t for t,_ in samples); main=min(tids)  # main thread tid == pid (smallest)
def area_of_js(f):
    for k,a in [('undici','export HTTP (undici)'),('receiver/otlp/transport','export HTTP (transport)'),('receiver/otlp/trace-encoder','OTLP encoding'),('proto-writer','OTLP encoding'),('receiver/metrics','RED metrics'),('receiver/prometheus','RED metrics'),('receiver/batcher','batching'),('receiver/','receiver other'),('src/spans/','span assembly'),('src/events/','record decoding'),('src/bpf/','ring read'),('src/','agent other'),('node:','node internals')]:
        if k in f: return a
    return 'other JS'
self_=collections.Counter(); incl=collections.Counter(); kern=collections.Counter()
for tid,fr in samples:
    if tid!=main:
        leaf=fr[0] if fr else '?'
        self_['thread: '+('JIT compile' if 'compiler' in ' '.join(fr[:6]) or 'Compile' in ' '.join(fr) else 'GC/other')]+=1; continue
    isk = lambda f: f.startswith(('entry_','do_syscall','__x64','x64_sys')) 
    js=next((f for f in fr if f.startswith('JS:')),None)
    a = area_of_js(js) if js else 'native no JS'
    if any('Heap' in f or 'Scavenger' in f or 'MarkCompact' in f or 'GCTracer' in f or 'Sweeper' in f for f in fr): a='GC (main thread)'
    self_[a]+=1
    joined=' '.join(fr)
    for k,b in [('writev','writev'),('uv__write','uv__write'),('uv__read','uv read'),('epoll_wait','epoll_wait'),('undici','undici any'),('transport.js','transport any'),('trace-encoder','encoder any'),('red-sink','red-sink any'),('metrics-exporter','metrics exporter any'),('prometheus','prometheus any'),('batcher','batcher any'),('koffi','koffi any'),('releaseFreeMemory','trim'),('malloc_trim','malloc_trim'),('gzip','gzip')]:
        if k in joined: incl[b]+=1
    # kernel syscalls: find syscall entry
    sc=next((f for f in fr if f.startswith('__x64_sys_') or f.startswith('__do_sys')),None)
    if sc: kern[sc]+=1
n=len(samples); print('samples',n, 'threads',dict(tids))
for k,v in self_.most_common(): print(f'{100*v/n:6.1f}% {k}')
print('-- inclusive');
for k,v in incl.most_common(): print(f'{100*v/n:6.1f}% {k}')
print('-- syscalls');
for k,v in kern.most_common(12): print(f'{100*v/n:6.1f}% {k}')
