#!/usr/bin/env python3
"""The import structure of a crate: its modules' strongly connected components.

A module depends on another when its code (not its comments, not its `mod tests` block)
names a path under `crate::` or `super::` that resolves to it, or a bare path into one of
its own child modules (`unary::Unary` in `ops/mod.rs`). Prints every component of
more than one module, largest first; `-v` adds the edges inside the largest.

    python3 scripts/import_cycles.py crates/core/src -v
"""
import os,re,sys
root=sys.argv[1] if len(sys.argv)>1 else 'crates/core/src'
mods={}
for d,_,fs in os.walk(root):
    for f in fs:
        if not f.endswith('.rs'): continue
        p=os.path.join(d,f); rel=os.path.relpath(p,root)[:-3]
        parts=rel.split('/')
        if parts[-1] in('mod','lib'): parts=parts[:-1]
        name='::'.join(parts) or 'lib'
        mods[name]=open(p).read()
def top(path):
    # map crate path to module name: longest prefix in mods
    segs=path.split('::')
    for k in range(len(segs),0,-1):
        n='::'.join(segs[:k])
        if n in mods: return n
    return None
g={m:set() for m in mods}
for m,src in mods.items():
    # strip test modules
    src=re.split(r'#\[cfg\(test\)\]\s*mod tests \{',src)[0]
    src='\n'.join(l for l in src.split('\n') if not l.strip().startswith('//'))
    for mm in re.finditer(r'crate::([A-Za-z_][A-Za-z0-9_:]*)',src):
        t=top(mm.group(1))
        if t and t!=m and t!='lib': g[m].add(t)
    for mm in re.finditer(r'use crate::\{([^;]*)\}',src):
        for part in re.split(r'[,\s]+',mm.group(1)):
            part=part.strip('{} ')
            t=top(part.split('::{')[0]) if part else None
            if t and t!=m and t!='lib': g[m].add(t)
    # A child module named by a bare path (`unary::Unary`, `use elem::Elem`).
    kids=set(re.findall(r'^\s*(?:pub(?:\([a-z]+\))? )?mod ([a-z_0-9]+);',src,re.M))
    for mm in re.finditer(r'(?<![A-Za-z0-9_:])([a-z_0-9]+)::',src):
        if mm.group(1) in kids:
            t=top('::'.join(([] if m=='lib' else m.split('::'))+[mm.group(1)]))
            if t and t!=m: g[m].add(t)
    for mm in re.finditer(r'(?:use )?super::([A-Za-z_][A-Za-z0-9_:]*)',src):
        base=m.split('::')[:-1]
        t=top('::'.join(base+[mm.group(1)]))
        if t and t!=m and t!='lib': g[m].add(t)
# tarjan
sys.setrecursionlimit(10000)
idx={};low={};st=[];on=set();sccs=[];c=[0]
def sc(v):
    idx[v]=low[v]=c[0];c[0]+=1;st.append(v);on.add(v)
    for w in g[v]:
        if w not in idx: sc(w);low[v]=min(low[v],low[w])
        elif w in on: low[v]=min(low[v],idx[w])
    if low[v]==idx[v]:
        comp=[]
        while True:
            w=st.pop();on.discard(w);comp.append(w)
            if w==v:break
        sccs.append(comp)
for v in g:
    if v not in idx: sc(v)
for comp in sorted(sccs,key=len,reverse=True):
    if len(comp)>1: print(len(comp),sorted(comp))
if '-v' in sys.argv:
    big=max(sccs,key=len)
    for m in sorted(big): print(m,'->',sorted(x for x in g[m] if x in big))
