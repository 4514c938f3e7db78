//! Every op of `streampool_cuda::ops` against a naive f64 reference on random data, in f32 (1e-4
//! scaled error) and, where the op has them, f16/bf16 storage (looser). Needs a GPU: ignored by
//! default, run with `-- --include-ignored` on a GPU machine.
#![cfg(feature = "cuda")]

mod common;

use common::*;
use streampool_core::{Backend, BackendError, Stream};
use streampool_core::{GemmDims, MatMath};
use streampool_cuda::ops::{self, Act, Elem, MatArg, Slice};
use streampool_cuda::{CudaBackend, CudaOptions, CudaStream};

fn stream() -> (streampool_cuda::CudaBackend, CudaStream) {
    let backend = open();
    let stream = backend.new_stream(0).unwrap();
    (backend, stream)
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn gemm_minilm_shapes_f32_tf32_f16_bf16() {
    let (_b, s) = stream();
    // (m, n, k) of MiniLM's projections at 128 tokens: QKV/output, intermediate, output.
    for (m, n, k) in [(128, 384, 384), (128, 1536, 384), (128, 384, 1536), (7, 5, 3)] {
        let (x, w) = (rand(m * k, 1), rand(n * k, 2));
        let want = matmul64(&x, false, &w, true, m, n, k);
        let (dx, dw, dc) = (upload(&s, &x), upload(&s, &w), s.alloc(m * n * 4).unwrap());
        let dims = GemmDims { batch: 1, m, n, k };
        let (a, b, c) =
            (MatArg::row_major(&dx, k), MatArg::transposed(&dw, k), MatArg::row_major(&dc, n));
        ops::gemm_f32(&s, dims, 1.0, a, b, 0.0, c).unwrap();
        assert_close(&format!("gemm f32 {m}x{n}x{k}"), &download(&s, &dc, m * n), &want, 1e-4);
        ops::gemm(&s, dims, 1.0, a, b, 0.0, c, Elem::F32, Elem::F32, MatMath::Tf32).unwrap();
        // TF32 rounds each operand to 10 mantissa bits: the error grows like sqrt(k).
        assert_close(&format!("gemm tf32 {m}x{n}x{k}"), &download(&s, &dc, m * n), &want, 3e-2);
        for (elem, up, round) in [
            (Elem::F16, upload_f16 as fn(&CudaStream, &[f32]) -> _, round_f16 as fn(&[f32]) -> _),
            (Elem::Bf16, upload_bf16, round_bf16),
        ] {
            let want = matmul64(&round(&x), false, &round(&w), true, m, n, k);
            let (hx, hw) = (up(&s, &x), up(&s, &w));
            let (a, b) = (MatArg::row_major(&hx, k), MatArg::transposed(&hw, k));
            ops::gemm(&s, dims, 1.0, a, b, 0.0, c, elem, Elem::F32, MatMath::Exact).unwrap();
            assert_close(
                &format!("gemm {elem:?}->f32 {m}x{n}x{k}"),
                &download(&s, &dc, m * n),
                &want,
                1e-4,
            );
        }
    }
    // beta = 1 accumulates; a transposed A.
    let (m, n, k) = (33, 17, 65);
    let (at, b, c0) = (rand(k * m, 3), rand(k * n, 4), rand(m * n, 5));
    let prod = matmul64(&at, true, &b, false, m, n, k);
    let want: Vec<f64> = prod.iter().zip(&c0).map(|(p, c)| 0.5 * p + *c as f64).collect();
    let (da, db, dc) = (upload(&s, &at), upload(&s, &b), upload(&s, &c0));
    let dims = GemmDims { batch: 1, m, n, k };
    ops::gemm_f32(
        &s,
        dims,
        0.5,
        MatArg::transposed(&da, m),
        MatArg::row_major(&db, n),
        1.0,
        MatArg::row_major(&dc, n),
    )
    .unwrap();
    assert_close("gemm A^T, beta 1", &download(&s, &dc, m * n), &want, 1e-4);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn gemm_strided_batched_attention_shapes() {
    let (_b, s) = stream();
    // Scores of one sequence: per head h, Q_h [128, 32] . K_h^T, heads interleaved in rows of 384.
    let (seq, heads, d) = (128, 12, 32);
    let hid = heads * d;
    let (q, k) = (rand(seq * hid, 6), rand(seq * hid, 7));
    let (dq, dk, ds) = (upload(&s, &q), upload(&s, &k), s.alloc(heads * seq * seq * 4).unwrap());
    let dims = GemmDims { batch: heads, m: seq, n: seq, k: d };
    let a = MatArg { at: Slice::new(&dq, 0), ld: hid, transposed: false, batch_stride: d };
    let b = MatArg { at: Slice::new(&dk, 0), ld: hid, transposed: true, batch_stride: d };
    let c = MatArg::row_major(&ds, seq).batched(seq * seq);
    ops::gemm_f32(&s, dims, 1.0, a, b, 0.0, c).unwrap();
    let got = download(&s, &ds, heads * seq * seq);
    let mut want = Vec::new();
    for h in 0..heads {
        for i in 0..seq {
            for j in 0..seq {
                want.push(
                    (0..d)
                        .map(|c| q[i * hid + h * d + c] as f64 * k[j * hid + h * d + c] as f64)
                        .sum(),
                );
            }
        }
    }
    assert_close("batched QK^T", &got, &want, 1e-4);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn linear_bias_gelu() {
    let (_b, s) = stream();
    let (rows, inf, outf) = (128, 384, 1536);
    let (x, w, bias) = (rand(rows * inf, 8), rand(outf * inf, 9), rand(outf, 10));
    let prod = matmul64(&x, false, &w, true, rows, outf, inf);
    let (dx, dw, db, dout) =
        (upload(&s, &x), upload(&s, &w), upload(&s, &bias), s.alloc(rows * outf * 4).unwrap());
    for act in [Act::Identity, Act::Gelu] {
        let want: Vec<f64> = prod
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let v = p + bias[i % outf] as f64;
                if act == Act::Gelu {
                    gelu64(v)
                } else {
                    v
                }
            })
            .collect();
        ops::linear(
            &s,
            (&dx).into(),
            (&dw).into(),
            Some((&db).into()),
            act,
            rows,
            inf,
            outf,
            (&dout).into(),
            Elem::F32,
            MatMath::Exact,
        )
        .unwrap();
        assert_close(&format!("linear {act:?}"), &download(&s, &dout, rows * outf), &want, 1e-4);
    }
    // f16 storage end to end (GELU as its tanh form in cuBLASLt's epilogue unless
    // STREAMPOOL_GELU=erf: within 4.7e-4 of exact GELU, inside this tolerance either way).
    let (hx, hw, hb, hout) = (
        upload_f16(&s, &x),
        upload_f16(&s, &w),
        upload_f16(&s, &bias),
        s.alloc(rows * outf * 2).unwrap(),
    );
    let p16 = matmul64(&round_f16(&x), false, &round_f16(&w), true, rows, outf, inf);
    let b16 = round_f16(&bias);
    let want: Vec<f64> =
        p16.iter().enumerate().map(|(i, p)| gelu64(p + b16[i % outf] as f64)).collect();
    ops::linear(
        &s,
        (&hx).into(),
        (&hw).into(),
        Some((&hb).into()),
        Act::Gelu,
        rows,
        inf,
        outf,
        (&hout).into(),
        Elem::F16,
        MatMath::Exact,
    )
    .unwrap();
    assert_close("linear f16 gelu", &download_f16(&s, &hout, rows * outf), &want, 4e-3);
}

/// GELU's tanh form runs in cuBLASLt's bias + GELU epilogue (one launch), in f16 and bf16 as in f32,
/// and computes that function.
#[test]
#[ignore = "needs a CUDA GPU"]
fn linear_bias_gelu_tanh_in_the_epilogue() {
    let (_b, s) = stream();
    let (rows, inf, outf) = (256, 384, 1536);
    let (x, w, bias) = (rand(rows * inf, 11), rand(outf * inf, 12), rand(outf, 13));
    let gelu_tanh = |v: f64| {
        0.5 * v * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (v + 0.044715 * v * v * v)).tanh())
    };
    for elem in [Elem::F16, Elem::Bf16, Elem::F32] {
        let Storage { up, round, down, tol } = storage(elem);
        let prod = matmul64(&round(&x), false, &round(&w), true, rows, outf, inf);
        let rb = round(&bias);
        let want: Vec<f64> =
            prod.iter().enumerate().map(|(i, p)| gelu_tanh(p + rb[i % outf] as f64)).collect();
        let (dx, dw, db) = (up(&s, &x), up(&s, &w), up(&s, &bias));
        let out = s.alloc(rows * outf * elem.size()).unwrap();
        let before = ops::lt_launches();
        ops::linear(
            &s,
            (&dx).into(),
            (&dw).into(),
            Some((&db).into()),
            Act::GeluTanh,
            rows,
            inf,
            outf,
            (&out).into(),
            elem,
            MatMath::Exact,
        )
        .unwrap();
        if elem != Elem::F32 {
            // f32 at this size may take the split-K path instead.
            assert_eq!(ops::lt_launches(), before + 1, "{elem:?}: one cuBLASLt launch");
        }
        let got = down(&s, &out, rows * outf);
        assert_close(&format!("linear gelu_tanh {elem:?}"), &got, &want, tol.max(4e-3));
    }
}

/// Linear with a bias and no activation: the cuBLASLt bias-epilogue path, including odd shapes,
/// operands at unaligned offsets (fewer algorithms, or the GEMM + bias fallback), a second bias
/// on the same cached plan, and threads (four at once, then 32 short-lived ones) sharing one
/// stream's plans.
#[test]
#[ignore = "needs a CUDA GPU"]
fn linear_bias_epilogue_shapes_offsets_threads() {
    // Split-K off: at batch-1 sizes it would take these linears (tests/split_k.rs covers it).
    let options = CudaOptions { kernel_cache_dir: None, split_k: false, ..Default::default() };
    let backend = CudaBackend::open_with(0, options).unwrap();
    let s = backend.new_stream(0).unwrap();
    // (rows, in, out, offset in elements of every operand)
    for (rows, inf, outf, off) in
        [(128, 384, 1152, 0), (1, 384, 1152, 0), (7, 3, 5, 0), (33, 65, 17, 1), (128, 384, 384, 3)]
    {
        let (x, w) = (rand(off + rows * inf, 11), rand(off + outf * inf, 12));
        let (dx, dw, dout) =
            (upload(&s, &x), upload(&s, &w), s.alloc((off + rows * outf) * 4).unwrap());
        let prod = matmul64(&x[off..], false, &w[off..], true, rows, outf, inf);
        for seed in [13, 14] {
            let before = ops::lt_launches();
            let bias = rand(off + outf, seed);
            let db = upload(&s, &bias);
            let want: Vec<f64> =
                prod.iter().enumerate().map(|(i, p)| p + bias[off + i % outf] as f64).collect();
            ops::linear(
                &s,
                Slice::new(&dx, off),
                Slice::new(&dw, off),
                Some(Slice::new(&db, off)),
                Act::Identity,
                rows,
                inf,
                outf,
                Slice::new(&dout, off),
                Elem::F32,
                MatMath::Exact,
            )
            .unwrap();
            if off == 0 {
                // Aligned operands: the one-launch cuBLASLt path, not the fallback.
                assert_eq!(ops::lt_launches(), before + 1, "{rows}x{inf}->{outf}");
            }
            let got = download(&s, &dout, off + rows * outf);
            assert_close(
                &format!("linear+bias {rows}x{inf}->{outf} @{off}"),
                &got[off..],
                &want,
                1e-4,
            );
        }
    }
    // Four threads on one stream (taking turns on its state lock, which guards the stream's
    // cuBLASLt handle and plans), then 32 short-lived threads one after another: the stream's
    // plans outlive every thread that made them.
    let (rows, inf, outf) = (64, 384, 1152);
    let (x, w, bias) = (rand(rows * inf, 15), rand(outf * inf, 16), rand(outf, 17));
    let want: Vec<f64> = matmul64(&x, false, &w, true, rows, outf, inf)
        .iter()
        .enumerate()
        .map(|(i, p)| p + bias[i % outf] as f64)
        .collect();
    let (dx, dw, db) = (upload(&s, &x), upload(&s, &w), upload(&s, &bias));
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let out = s.alloc(rows * outf * 4).unwrap();
                for _ in 0..10 {
                    linear_f32(&s, &dx, &dw, Some(&db), [rows, inf, outf], &out).unwrap();
                }
                assert!(ops::lt_launches() >= 10, "this thread's linears used cuBLASLt");
                assert_close("linear+bias threads", &download(&s, &out, rows * outf), &want, 1e-4);
            });
        }
    });
    for i in 0..32 {
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let out = s.alloc(rows * outf * 4).unwrap();
                linear_f32(&s, &dx, &dw, Some(&db), [rows, inf, outf], &out).unwrap();
                assert_eq!(ops::lt_launches(), 1, "thread {i}: one cuBLASLt launch");
                assert_close("linear+bias churn", &download(&s, &out, rows * outf), &want, 1e-4);
            });
        });
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn add_layer_norm_all_types() {
    let (_b, s) = stream();
    // The last three run the warp-per-row kernels (rows >= WARP_ROWS), widths 16, 32 and 8.
    let w = ops::WARP_ROWS;
    for (rows, dim) in
        [(256, 384), (3, 1000), (2, 8192), (5, 31), (w + 3, 384), (w, 1000), (w + 1, 31)]
    {
        let (x, r, bias) = (rand(rows * dim, 11), rand(rows * dim, 12), rand(dim, 13));
        let gamma: Vec<f32> = rand(dim, 14).iter().map(|v| 1.0 + 0.5 * v).collect();
        let beta = rand(dim, 15);
        for elem in [Elem::F32, Elem::F16, Elem::Bf16] {
            let Storage { up, round, down, tol } = storage(elem);
            let (rx, rr, rb, rg, rbe) =
                (round(&x), round(&r), round(&bias), round(&gamma), round(&beta));
            let mut want = Vec::new();
            for row in 0..rows {
                let sum: Vec<f64> = (0..dim)
                    .map(|c| rx[row * dim + c] as f64 + rr[row * dim + c] as f64 + rb[c] as f64)
                    .collect();
                want.extend(layer_norm64(&sum, &rg, &rbe, 1e-12));
            }
            let (dx, dr, db, dg, dbe) =
                (up(&s, &x), up(&s, &r), up(&s, &bias), up(&s, &gamma), up(&s, &beta));
            let out = s.alloc(rows * dim * elem.size()).unwrap();
            let norm = ops::LayerNormArgs { gamma: (&dg).into(), beta: (&dbe).into(), eps: 1e-12 };
            ops::add_layer_norm(
                &s,
                (&dx).into(),
                Some((&dr).into()),
                Some((&db).into()),
                norm,
                rows,
                dim,
                (&out).into(),
                elem,
            )
            .unwrap();
            assert_close(
                &format!("add_layer_norm {elem:?} {rows}x{dim}"),
                &down(&s, &out, rows * dim),
                &want,
                tol,
            );
        }
    }
    let (_b2, s2) = stream();
    let big = s2.alloc(4 * 8193 * 4).unwrap();
    let norm = ops::LayerNormArgs { gamma: (&big).into(), beta: (&big).into(), eps: 1e-5 };
    let err =
        ops::layer_norm(&s2, (&big).into(), norm, 1, 8193, (&big).into(), Elem::F32).unwrap_err();
    assert!(matches!(err, BackendError::InvalidArgument(_)), "{err}");
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn softmax_with_mask() {
    let (_b, s) = stream();
    let (batch, heads, seq) = (2, 3, 77);
    let rows = batch * heads * seq;
    let x: Vec<f32> = rand(rows * seq, 16).iter().map(|v| v * 8.0).collect();
    let mut mask = vec![1.0f32; batch * seq];
    mask[seq + 50..].iter_mut().for_each(|m| *m = 0.0);
    let scale = 0.5f64;
    let mut want = Vec::new();
    for r in 0..rows {
        let b = r / (heads * seq);
        let sc: Vec<f64> = (0..seq)
            .map(|c| {
                x[r * seq + c] as f64 * scale + (1.0 - mask[b * seq + c] as f64) * f32::MIN as f64
            })
            .collect();
        let mx = sc.iter().cloned().fold(f64::MIN, f64::max);
        let z: f64 = sc.iter().map(|v| (v - mx).exp()).sum();
        want.extend(sc.iter().map(|v| (v - mx).exp() / z));
    }
    let (dx, dm) = (upload(&s, &x), upload(&s, &mask));
    ops::softmax_mask(
        &s,
        (&dx).into(),
        Some((&dm).into()),
        rows,
        seq,
        heads * seq,
        scale as f32,
        (&dx).into(),
        Elem::F32,
    )
    .unwrap();
    assert_close("softmax_mask in place", &download(&s, &dx, rows * seq), &want, 1e-5);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn fused_attention_matches_reference() {
    let (_b, s) = stream();
    // The last three have enough blocks for the f16 / bf16 tensor-core kernels.
    for (batch, seq, heads, d) in [
        (2, 128, 12, 32),
        (3, 77, 4, 64),
        (1, 256, 2, 128),
        (2, 5, 1, 32),
        (24, 72, 12, 32),
        (40, 77, 4, 64),
        (8, 136, 8, 128),
    ] {
        let hid = heads * d;
        let n = batch * seq * hid;
        let (q, k, v) = (rand(n, 17), rand(n, 18), rand(n, 19));
        let mut mask = vec![1.0f32; batch * seq];
        if batch > 1 {
            mask[seq + seq / 2..].iter_mut().for_each(|m| *m = 0.0); // padding in sequence 1
        }
        let dims = streampool_core::AttentionDims { batch, seq, heads, head_dim: d };
        for elem in [Elem::F32, Elem::F16, Elem::Bf16] {
            let Storage { up, round, down, tol } = storage(elem);
            let want = attention64(
                &round(&q),
                &round(&k),
                &round(&v),
                hid,
                Some(&mask),
                batch,
                seq,
                heads,
                d,
            );
            let dm = upload(&s, &mask);
            // Dense rows, then rows one element wider: K and V rows are then not 16-byte
            // aligned, so the large cases take the tensor-core kernel without cp.async instead
            // of the flash-style one.
            for ld in [hid, hid + 1] {
                let pad = |x: &[f32]| -> Vec<f32> {
                    x.chunks(hid)
                        .flat_map(|r| r.iter().copied().chain(vec![0.0; ld - hid]))
                        .collect()
                };
                let (dq, dk, dv) = (up(&s, &pad(&q)), up(&s, &pad(&k)), up(&s, &pad(&v)));
                let out = s.alloc(batch * seq * ld * elem.size()).unwrap();
                let layout = ops::AttentionLayout { ld_q: ld, ld_k: ld, ld_v: ld, ld_out: ld };
                ops::attention(
                    &s,
                    (&dq).into(),
                    (&dk).into(),
                    (&dv).into(),
                    Some((&dm).into()),
                    (&out).into(),
                    dims,
                    layout,
                    None,
                    None,
                    elem,
                )
                .unwrap();
                let got: Vec<f32> = down(&s, &out, batch * seq * ld)
                    .chunks(ld)
                    .flat_map(|r| r[..hid].to_vec())
                    .collect();
                let what =
                    format!("attention {elem:?} b{batch} s{seq} h{heads} d{d}, rows of {ld}");
                assert_close(&what, &got, &want, tol);
            }
        }
    }
    // A fused QKV buffer [batch, seq, 3 * hidden], no mask; output into a wider buffer.
    let (batch, seq, heads, d) = (2, 40, 3, 32);
    let hid = heads * d;
    let qkv = rand(batch * seq * 3 * hid, 20);
    let split = |o: usize| -> Vec<f32> {
        qkv.chunks(3 * hid).flat_map(|r| r[o..o + hid].to_vec()).collect()
    };
    let want =
        attention64(&split(0), &split(hid), &split(2 * hid), hid, None, batch, seq, heads, d);
    let dqkv = upload(&s, &qkv);
    let out = s.alloc(batch * seq * hid * 4).unwrap();
    let layout = ops::AttentionLayout { ld_q: 3 * hid, ld_k: 3 * hid, ld_v: 3 * hid, ld_out: hid };
    let dims = streampool_core::AttentionDims { batch, seq, heads, head_dim: d };
    ops::attention(
        &s,
        Slice::new(&dqkv, 0),
        Slice::new(&dqkv, hid),
        Slice::new(&dqkv, 2 * hid),
        None,
        (&out).into(),
        dims,
        layout,
        None,
        None,
        Elem::F32,
    )
    .unwrap();
    assert_close("attention fused qkv", &download(&s, &out, batch * seq * hid), &want, 1e-4);
    let err = ops::attention(
        &s,
        Slice::new(&dqkv, 1),
        Slice::new(&dqkv, hid),
        Slice::new(&dqkv, 2 * hid),
        None,
        (&out).into(),
        dims,
        ops::AttentionLayout::dense(3 * hid),
        None,
        None,
        Elem::F32,
    )
    .unwrap_err();
    assert!(matches!(err, BackendError::InvalidArgument(_)), "{err}");
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn embeddings_gather_and_bert() {
    let (_b, s) = stream();
    let (vocab, maxpos, types, dim, batch, seq) = (1000, 512, 2, 384, 3, 20);
    let (word, pos, typ) = (rand(vocab * dim, 21), rand(maxpos * dim, 22), rand(types * dim, 23));
    let gamma: Vec<f32> = rand(dim, 24).iter().map(|v| 1.0 + 0.5 * v).collect();
    let beta = rand(dim, 25);
    let tokens = batch * seq;
    let ids: Vec<u32> = (0..tokens as u32).map(|t| (t * 7919 + 13) % vocab as u32).collect();
    let tids: Vec<u32> = (0..tokens as u32).map(|t| t % 2).collect();
    let (dw, dp, dt, dg, db) = (
        upload(&s, &word),
        upload(&s, &pos),
        upload(&s, &typ),
        upload(&s, &gamma),
        upload(&s, &beta),
    );
    let (di, dti) = (upload_u32(&s, &ids), upload_u32(&s, &tids));
    let out = s.alloc(tokens * dim * 4).unwrap();
    ops::embedding_gather(
        &s,
        (&di).into(),
        tokens,
        (&dw).into(),
        vocab,
        dim,
        (&out).into(),
        Elem::F32,
    )
    .unwrap();
    let want: Vec<f64> = ids
        .iter()
        .flat_map(|&i| word[i as usize * dim..][..dim].iter().map(|&v| v as f64))
        .collect();
    assert_close("embedding_gather", &download(&s, &out, tokens * dim), &want, 0.0);
    let tables = ops::BertEmbeddings {
        word: (&dw).into(),
        vocab,
        position: (&dp).into(),
        max_positions: maxpos,
        token_type: (&dt).into(),
        type_vocab: types,
        gamma: (&dg).into(),
        beta: (&db).into(),
        eps: 1e-12,
        dim,
    };
    ops::bert_embeddings(
        &s,
        (&di).into(),
        Some((&dti).into()),
        &tables,
        batch,
        seq,
        (&out).into(),
        Elem::F32,
    )
    .unwrap();
    let mut want = Vec::new();
    for t in 0..tokens {
        let e: Vec<f64> = (0..dim)
            .map(|c| {
                word[ids[t] as usize * dim + c] as f64
                    + pos[(t % seq) * dim + c] as f64
                    + typ[tids[t] as usize * dim + c] as f64
            })
            .collect();
        want.extend(layer_norm64(&e, &gamma, &beta, 1e-12));
    }
    assert_close("bert_embeddings", &download(&s, &out, tokens * dim), &want, 1e-4);
    // An id past the table: a NaN row, the stream keeps working.
    let bad = upload_u32(&s, &[vocab as u32, 0]);
    ops::embedding_gather(&s, (&bad).into(), 2, (&dw).into(), vocab, dim, (&out).into(), Elem::F32)
        .unwrap();
    let got = download(&s, &out, 2 * dim);
    assert!(got[..dim].iter().all(|v| v.is_nan()) && got[dim..].iter().all(|v| v.is_finite()));
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn mean_pool_l2_normalize() {
    let (_b, s) = stream();
    let (batch, seq, dim) = (4, 128, 384);
    let hidden = rand(batch * seq * dim, 26);
    let mut mask = vec![1.0f32; batch * seq];
    mask[seq + 10..2 * seq].iter_mut().for_each(|m| *m = 0.0);
    mask[2 * seq..3 * seq].iter_mut().for_each(|m| *m = 0.0); // all padding: zeros
    let (dh, dm, out) = (upload(&s, &hidden), upload(&s, &mask), s.alloc(batch * dim * 4).unwrap());
    let mut pooled = Vec::new();
    for b in 0..batch {
        let count: f64 = mask[b * seq..][..seq].iter().map(|&m| m as f64).sum::<f64>().max(1e-9);
        for c in 0..dim {
            let sum: f64 = (0..seq)
                .map(|t| hidden[(b * seq + t) * dim + c] as f64 * mask[b * seq + t] as f64)
                .sum();
            pooled.push(sum / count);
        }
    }
    ops::mean_pool(
        &s,
        (&dh).into(),
        Some((&dm).into()),
        batch,
        seq,
        dim,
        false,
        (&out).into(),
        Elem::F32,
    )
    .unwrap();
    assert_close("mean_pool", &download(&s, &out, batch * dim), &pooled, 1e-5);
    let mut normed = pooled.clone();
    for row in normed.chunks_mut(dim) {
        let n = row.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
        row.iter_mut().for_each(|v| *v /= n);
    }
    ops::mean_pool(
        &s,
        (&dh).into(),
        Some((&dm).into()),
        batch,
        seq,
        dim,
        true,
        (&out).into(),
        Elem::F32,
    )
    .unwrap();
    assert_close("mean_pool + l2", &download(&s, &out, batch * dim), &normed, 1e-5);
    let p: Vec<f32> = pooled.iter().map(|&v| v as f32).collect();
    let dp = upload(&s, &p);
    ops::l2_normalize(&s, (&dp).into(), batch, dim, (&dp).into(), Elem::F32).unwrap();
    assert_close("l2_normalize", &download(&s, &dp, batch * dim), &normed, 1e-5);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn strided_copy_views() {
    let (_b, s) = stream();
    // src: a [2, 3, 4, 5] tensor holding its own index; permute, narrow, flip and broadcast.
    let src: Vec<f32> = (0..120).map(|i| i as f32).collect();
    let shape = [2, 3, 3, 2, 3];
    let strides = [0isize, 1, -5, 60, 20];
    let offset = 1 + 2 * 5;
    let (ds, dd) = (upload(&s, &src), s.alloc(108 * 4).unwrap());
    ops::strided_copy(&s, Slice::new(&ds, offset), &shape, &strides, (&dd).into(), 4).unwrap();
    let mut want = Vec::new();
    for _ in 0..2 {
        for a in 0..3 {
            for b in 0..3 {
                for c in 0..2 {
                    for d in 0..3 {
                        want.push((c * 60 + d * 20 + (2 - b) * 5 + (a + 1)) as f64);
                    }
                }
            }
        }
    }
    assert_close("strided_copy 5-d", &download(&s, &dd, 108), &want, 0.0);
    // 2-byte elements: a transpose.
    let h: Vec<u8> = (0..6u16).flat_map(|v| v.to_ne_bytes()).collect();
    let dh = upload_bytes(&s, &h);
    let dt = s.alloc(12).unwrap();
    ops::strided_copy(&s, (&dh).into(), &[3, 2], &[1, 3], (&dt).into(), 2).unwrap();
    let mut got = [0u8; 12];
    s.read(&dt, 0, &mut got).unwrap();
    let got: Vec<u16> = got.chunks(2).map(|c| u16::from_ne_bytes([c[0], c[1]])).collect();
    assert_eq!(got, [0, 3, 1, 4, 2, 5]);
    let err = ops::strided_copy(&s, (&ds).into(), &[2, 2], &[-1, 1], (&dd).into(), 4).unwrap_err();
    assert!(matches!(err, BackendError::InvalidArgument(_)));
    let err = ops::strided_copy(&s, (&ds).into(), &[2, 61], &[61, 1], (&dd).into(), 4).unwrap_err();
    assert!(matches!(err, BackendError::InvalidArgument(_)));
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn casts_round_trip() {
    let (_b, s) = stream();
    let n = 10_001;
    let x: Vec<f32> = rand(n, 27).iter().map(|v| v * 300.0).collect();
    let dx = upload(&s, &x);
    let (h, back) = (s.alloc(n * 2).unwrap(), s.alloc(n * 4).unwrap());
    for (elem, round) in
        [(Elem::F16, round_f16 as fn(&[f32]) -> Vec<f32>), (Elem::Bf16, round_bf16)]
    {
        ops::cast(&s, (&dx).into(), Elem::F32, (&h).into(), elem, n).unwrap();
        ops::cast(&s, (&h).into(), elem, (&back).into(), Elem::F32, n).unwrap();
        let want: Vec<f64> = round(&x).iter().map(|&v| v as f64).collect();
        assert_close(&format!("cast f32->{elem:?}->f32"), &download(&s, &back, n), &want, 0.0);
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn conv1d_matches_reference() {
    let (_b, s) = stream();
    let shape = streampool_core::Conv1dShape {
        batch: 2,
        in_channels: 6,
        length: 50,
        out_channels: 4,
        kernel: 5,
    };
    for params in [
        streampool_core::Conv1dParams::default(),
        streampool_core::Conv1dParams { stride: 2, padding: 3, dilation: 2, groups: 2 },
    ] {
        let lout = shape.out_len(&params).unwrap();
        let cin_g = shape.in_channels / params.groups;
        let cout_g = shape.out_channels / params.groups;
        let x = rand(shape.batch * shape.in_channels * shape.length, 28);
        let w = rand(shape.out_channels * cin_g * shape.kernel, 29);
        let bias = rand(shape.out_channels, 30);
        let mut want = Vec::new();
        for b in 0..shape.batch {
            for o in 0..shape.out_channels {
                let g = o / cout_g;
                for l in 0..lout {
                    let mut acc = bias[o] as f64;
                    for c in 0..cin_g {
                        for t in 0..shape.kernel {
                            let pos = (l * params.stride + t * params.dilation) as isize
                                - params.padding as isize;
                            if pos >= 0 && (pos as usize) < shape.length {
                                acc += w[(o * cin_g + c) * shape.kernel + t] as f64
                                    * x[(b * shape.in_channels + g * cin_g + c) * shape.length
                                        + pos as usize]
                                        as f64;
                            }
                        }
                    }
                    want.push(gelu64(acc));
                }
            }
        }
        let (dx, dw, db) = (upload(&s, &x), upload(&s, &w), upload(&s, &bias));
        let out = s.alloc(want.len() * 4).unwrap();
        ops::conv1d(
            &s,
            (&dx).into(),
            (&dw).into(),
            Some((&db).into()),
            (&out).into(),
            shape,
            params,
            Act::Gelu,
            Elem::F32,
        )
        .unwrap();
        assert_close(&format!("conv1d {params:?}"), &download(&s, &out, want.len()), &want, 1e-5);
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn bad_arguments_enqueue_nothing() {
    let (_b, s) = stream();
    let small = s.alloc(100).unwrap();
    let dims = GemmDims { batch: 1, m: 8, n: 8, k: 8 };
    let m = MatArg::row_major(&small, 8);
    let err = ops::gemm_f32(&s, dims, 1.0, m, m, 0.0, m).unwrap_err();
    assert!(matches!(err, BackendError::InvalidArgument(_)), "{err}");
    let err =
        ops::bias_act(&s, (&small).into(), None, Act::Gelu, 5, 5, Slice::new(&small, 1), Elem::F32)
            .unwrap_err();
    assert!(matches!(err, BackendError::InvalidArgument(_)), "{err}");
    let other = open();
    let foreign = other.new_stream(0).unwrap().alloc(100).unwrap();
    let err =
        ops::bias_act(&s, (&foreign).into(), None, Act::Gelu, 1, 1, (&small).into(), Elem::F32);
    // Same device, another backend handle: the primary context is shared, so this is allowed.
    assert!(err.is_ok());
    s.synchronize().unwrap();
}
