# Where a slot's device memory goes: cuStreamCreate, cublasCreate, a 32 MiB workspace,
# cublasSetStream/SetWorkspace, first SGEMM, cublasLtCreate, per slot, in one thread and then
# from 8 threads (one slot each), reading cuMemGetInfo after each step.
import ctypes, ctypes.util, glob, threading
def lib(names):
    for n in names:
        for p in glob.glob(f"/usr/**/{n}", recursive=True) + glob.glob(f"/opt/**/{n}", recursive=True) + [n]:
            try: return ctypes.CDLL(p)
            except OSError: pass
    raise SystemExit(f"missing {names}")
cu = lib(["libcuda.so.1"]); blas = lib(["libcublas.so.13", "libcublas.so.12", "libcublas.so"]); lt = lib(["libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"])
def ok(r, what):
    if r != 0: raise SystemExit(f"{what} failed: {r}")
ok(cu.cuInit(0), "cuInit")
dev = ctypes.c_int(); ok(cu.cuDeviceGet(ctypes.byref(dev), 0), "cuDeviceGet")
ctx = ctypes.c_void_p(); ok(cu.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev), "retain")
ok(cu.cuCtxSetCurrent(ctx), "setcurrent")
def used():
    f, t = ctypes.c_size_t(), ctypes.c_size_t(); cu.cuMemGetInfo_v2(ctypes.byref(f), ctypes.byref(t)); return (t.value - f.value) >> 20
A = ctypes.c_void_p()
ok(cu.cuMemAlloc_v2(ctypes.byref(A), 64 << 20), "alloc A")
def slot(log):
    cu.cuCtxSetCurrent(ctx)
    steps = []
    m0 = used()
    s = ctypes.c_void_p(); ok(cu.cuStreamCreate(ctypes.byref(s), 1), "stream"); steps.append(("stream", used()))
    h = ctypes.c_void_p(); ok(blas.cublasCreate_v2(ctypes.byref(h)), "cublasCreate"); steps.append(("cublasCreate", used()))
    w = ctypes.c_void_p(); ok(cu.cuMemAlloc_v2(ctypes.byref(w), 32 << 20), "ws"); steps.append(("workspace alloc", used()))
    ok(blas.cublasSetStream_v2(h, s), "setstream"); ok(blas.cublasSetWorkspace_v2(h, w, ctypes.c_size_t(32 << 20)), "setws"); steps.append(("set stream+ws", used()))
    one, zero = ctypes.c_float(1), ctypes.c_float(0)
    ok(blas.cublasSgemm_v2(h, 0, 0, 384, 128, 384, ctypes.byref(one), A, 384, A, 384, ctypes.byref(zero), ctypes.c_void_p(A.value + (32 << 20)), 384), "sgemm")
    ok(cu.cuStreamSynchronize(s), "sync"); steps.append(("first sgemm", used()))
    l = ctypes.c_void_p(); ok(lt.cublasLtCreate(ctypes.byref(l)), "ltcreate"); steps.append(("cublasLtCreate", used()))
    log.append((m0, steps))
log = []
for i in range(3): slot(log)
print("one thread, 3 slots:")
for m0, steps in log: print("  start", m0, "MiB;", "; ".join(f"{n} +{m - m0}" for n, m in steps))
log = []
b = used()
ts = [threading.Thread(target=slot, args=(log,)) for _ in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
print(f"8 threads, a slot each: {used() - b} MiB in all, {(used() - b) / 8:.0f} per slot")
