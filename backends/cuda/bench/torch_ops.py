"""The PyTorch side of benches/kernels.rs: the same attention and fused add + layer norm at the
same shapes, timed with CUDA events (200 iterations after 10 warm-up), microseconds per launch."""
import torch
import torch.nn.functional as F


def time_us(f, iters=200):
    for _ in range(10):
        f()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        f()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) * 1e3 / iters


torch.backends.cuda.matmul.allow_tf32 = False
dev = "cuda"
for batch, seq in [(1, 128), (8, 128), (32, 128)]:
    heads, d = 12, 32
    hid = heads * d
    for dtype, name in [(torch.float32, "F32"), (torch.float16, "F16")]:
        q, k, v = (torch.randn(batch, seq, hid, device=dev, dtype=dtype) for _ in range(3))
        mask = torch.ones(batch, seq, device=dev)
        add = ((1.0 - mask) * torch.finfo(dtype).min)[:, None, None, :].to(dtype)

        def sdpa():
            qh, kh, vh = (t.view(batch, seq, heads, d).transpose(1, 2) for t in (q, k, v))
            o = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=add)
            return o.transpose(1, 2).reshape(batch, seq, hid)

        print(f"TORCH attention {name} batch={batch} seq={seq} heads={heads} d={d}: {time_us(sdpa):.2f} us")
    rows = batch * seq
    x, r = torch.randn(rows, hid, device=dev), torch.randn(rows, hid, device=dev)
    bias, g, b = (torch.randn(hid, device=dev) for _ in range(3))
    print(f"TORCH add_layer_norm F32 rows={rows} dim={hid}: "
          f"{time_us(lambda: F.layer_norm(x + bias + r, (hid,), g, b, 1e-12)):.2f} us")
    print(f"TORCH layer_norm_only F32 rows={rows} dim={hid}: "
          f"{time_us(lambda: F.layer_norm(x, (hid,), g, b, 1e-12)):.2f} us")
