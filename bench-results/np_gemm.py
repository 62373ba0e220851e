import os, sys, time, json
import numpy as np
def bench(m,k,n,form,min_time=0.25,repeats=7):
    rng=np.random.default_rng(0)
    a = rng.standard_normal((k,m),dtype=np.float32).T if form=="tn" else rng.standard_normal((m,k),dtype=np.float32)
    b = rng.standard_normal((n,k),dtype=np.float32).T if form=="nt" else rng.standard_normal((k,n),dtype=np.float32)
    for _ in range(5): a@b
    it=1
    while True:
        t=time.perf_counter()
        for _ in range(it): a@b
        dt=time.perf_counter()-t
        if dt>=min_time*0.5: break
        it*=2
    it=max(1,int(it*min_time/dt))
    s=[]
    for _ in range(repeats):
        t=time.perf_counter()
        for _ in range(it): a@b
        s.append((time.perf_counter()-t)/it)
    s.sort(); med=s[len(s)//2]
    return 2*m*n*k/med/1e9
shapes=[(n,n,n,"nn") for n in (256,512,1024,2048)]+[x for bs in (32,128,512) for x in ((bs,784,256,"nn"),(784,bs,256,"tn"),(bs,256,784,"nt"))]
for m,k,n,f in shapes:
    print(json.dumps({"bench":"gemm","framework":"numpy","config":{"m":m,"k":k,"n":n,"form":f},"value":bench(m,k,n,f)}),flush=True)
