# Per-kernel time and multiprocessor-time (sm__cycles_active.sum / clock) from an Nsight Compute CSV
# run with --metrics gpu__time_duration.sum,sm__cycles_active.sum,sm__cycles_elapsed.avg.per_second.
# Usage: python3 ncu_area.py ncu.csv
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
if not rows:
    print(open(sys.argv[1]).read()[-2000:]); sys.exit()
h = rows[0]; ii = h.index("ID"); ki = h.index("Kernel Name"); mi = h.index("Metric Name"); vi = h.index("Metric Value")
gi = h.index("Grid Size"); bi = h.index("Block Size")
per = collections.defaultdict(dict); name = {}
for r in rows[1:]:
    try: v = float(r[vi].replace(",", ""))
    except ValueError: continue
    per[r[ii]][r[mi]] = v; name[r[ii]] = r[ki][:60] + " g" + r[gi] + " b" + r[bi]
agg = collections.defaultdict(lambda: [0, 0.0, 0.0])
for i, m in per.items():
    d = m.get("gpu__time_duration.sum", 0) / 1e3  # us
    clk = m.get("sm__cycles_elapsed.avg.per_second", 1.5e9)
    area = m.get("sm__cycles_active.sum", 0) / clk * 1e6  # SM-us
    a = agg[name[i]]; a[0] += 1; a[1] += d; a[2] += area
nk = sum(a[0] for a in agg.values()); td = sum(a[1] for a in agg.values()); ta = sum(a[2] for a in agg.values())
print(f"{'total us':>9} {'SM-us':>9} {'n':>4} {'us/k':>7} {'SMs':>6}  kernel")
for k, a in sorted(agg.items(), key=lambda x: -x[1][2])[:30]:
    print(f"{a[1]:9.1f} {a[2]:9.1f} {a[0]:4d} {a[1]/a[0]:7.2f} {a[2]/max(a[1],1e-9):6.1f}  {k}")
print(f"kernels {nk}: time {td:.1f} us, area {ta:.1f} SM-us, mean SMs busy {ta/td:.1f}")
