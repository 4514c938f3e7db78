//! MLP and Conv1D against an independent f64 reference; MiniLM, MLP and Conv1D running at the
//! same time on different threads.

use std::path::Path;

use crate::common::{cases, compare, device, model, texts};
use streampool_models::loading::Weights;
use streampool_models::synthetic::{values, write_conv1d, write_mlp};
use streampool_models::{Conv1dNet, Mlp};

const MLP_DIMS: [usize; 4] = [24, 64, 48, 10];
const CONV_CHANNELS: [usize; 3] = [4, 16, 8];
const KERNEL: usize = 3;

/// erf in f64: Taylor series (|x| < 4, ~1e-10 accurate), +-1 beyond.
fn erf(x: f64) -> f64 {
    if x.abs() >= 4.0 {
        return x.signum();
    }
    let (mut term, mut sum, x2) = (x, x, x * x);
    for n in 1..200 {
        term *= -x2 / n as f64;
        let add = term / (2 * n + 1) as f64;
        sum += add;
        if add.abs() < 1e-17 {
            break;
        }
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

fn read(w: &Weights, name: &str) -> (Vec<f64>, Vec<usize>) {
    let shape = w.shape(name).unwrap().to_vec();
    (w.get_f32(name, &shape).unwrap().into_iter().map(f64::from).collect(), shape)
}

fn mlp_reference(path: &Path, input: &[f32], batch: usize) -> Vec<f64> {
    let w = Weights::open(path).unwrap();
    let mut x: Vec<f64> = input.iter().map(|&v| v as f64).collect();
    let layers = MLP_DIMS.len() - 1;
    for l in 0..layers {
        let (wt, shape) = read(&w, &format!("layers.{l}.weight"));
        let (b, _) = read(&w, &format!("layers.{l}.bias"));
        let (out, inp) = (shape[0], shape[1]);
        let mut y = vec![0.0; batch * out];
        for r in 0..batch {
            for o in 0..out {
                let s: f64 = (0..inp).map(|i| x[r * inp + i] * wt[o * inp + i]).sum::<f64>() + b[o];
                y[r * out + o] = if l + 1 < layers { gelu(s) } else { s };
            }
        }
        x = y;
    }
    x
}

fn conv_reference(path: &Path, input: &[f32], batch: usize, length: usize) -> Vec<f64> {
    let w = Weights::open(path).unwrap();
    let mut x: Vec<f64> = input.iter().map(|&v| v as f64).collect();
    let layers = CONV_CHANNELS.len() - 1;
    let pad = (KERNEL - 1) / 2;
    for l in 0..layers {
        let (wt, shape) = read(&w, &format!("convs.{l}.weight"));
        let (b, _) = read(&w, &format!("convs.{l}.bias"));
        let (cout, cin, k) = (shape[0], shape[1], shape[2]);
        let mut y = vec![0.0; batch * cout * length];
        for n in 0..batch {
            for o in 0..cout {
                for t in 0..length {
                    let mut s = b[o];
                    for c in 0..cin {
                        for j in 0..k {
                            let pos = t as isize + j as isize - pad as isize;
                            if pos >= 0 && (pos as usize) < length {
                                s += wt[(o * cin + c) * k + j]
                                    * x[(n * cin + c) * length + pos as usize];
                            }
                        }
                    }
                    y[(n * cout + o) * length + t] = if l + 1 < layers { gelu(s) } else { s };
                }
            }
        }
        x = y;
    }
    let cout = CONV_CHANNELS[layers];
    (0..batch * cout)
        .map(|r| x[r * length..][..length].iter().sum::<f64>() / length as f64)
        .collect()
}

fn assert_close(got: &[f32], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let diff = got.iter().zip(want).map(|(&g, &w)| (g as f64 - w).abs()).fold(0.0, f64::max);
    assert!(diff <= 1e-4, "{what}: max abs diff {diff} from the f64 reference");
}

struct Small {
    _dir: tempfile::TempDir,
    mlp: Mlp<streampool_cpu::CpuBackend>,
    mlp_path: std::path::PathBuf,
    conv: Conv1dNet<streampool_cpu::CpuBackend>,
    conv_path: std::path::PathBuf,
}

fn small() -> Small {
    let dir = tempfile::tempdir().unwrap();
    let mlp_path = dir.path().join("mlp.safetensors");
    let conv_path = dir.path().join("conv.safetensors");
    write_mlp(&mlp_path, &MLP_DIMS, 7).unwrap();
    write_conv1d(&conv_path, &CONV_CHANNELS, KERNEL, 11).unwrap();
    let mlp = Mlp::load(device(), &mlp_path).unwrap();
    let conv = Conv1dNet::load(device(), &conv_path).unwrap();
    Small { _dir: dir, mlp, mlp_path, conv, conv_path }
}

#[test]
fn mlp_matches_f64_reference() {
    let s = small();
    assert_eq!((s.mlp.in_features(), s.mlp.out_features()), (24, 10));
    let lease = device().acquire().unwrap();
    for batch in [1, 5, 17] {
        let input = values(100 + batch as u64, batch * 24, 2.0);
        let got = s.mlp.forward(lease.stream(), &input, batch).unwrap();
        assert_close(
            &got,
            &mlp_reference(&s.mlp_path, &input, batch),
            &format!("mlp batch {batch}"),
        );
    }
    assert!(s.mlp.forward(lease.stream(), &[1.0; 5], 1).is_err());
}

#[test]
fn conv1d_matches_f64_reference() {
    let s = small();
    assert_eq!((s.conv.in_channels(), s.conv.out_channels()), (4, 8));
    let lease = device().acquire().unwrap();
    for (batch, length) in [(1, 9), (3, 32), (2, 5)] {
        let input = values(200 + length as u64, batch * 4 * length, 1.5);
        let got = s.conv.forward(lease.stream(), &input, batch, length).unwrap();
        let want = conv_reference(&s.conv_path, &input, batch, length);
        assert_close(&got, &want, &format!("conv batch {batch} length {length}"));
    }
}

#[test]
fn three_models_at_once_on_different_threads() {
    let Some(minilm) = model() else { return };
    let s = small();
    let mlp_input = values(300, 4 * 24, 2.0);
    let mlp_want = mlp_reference(&s.mlp_path, &mlp_input, 4);
    let conv_input = values(301, 2 * 4 * 16, 1.5);
    let conv_want = conv_reference(&s.conv_path, &conv_input, 2, 16);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let lease = device().acquire().unwrap();
            for round in 0..3 {
                let picked: Vec<&str> = texts().into_iter().skip(round * 5).take(5).collect();
                let got = minilm.embed(lease.stream(), &picked).unwrap();
                for (g, case) in got.iter().zip(cases().iter().skip(round * 5)) {
                    let (cos, diff) = compare(g, &case.embedding);
                    assert!(
                        cos >= 0.99999 && diff <= 1e-4,
                        "{:?}: cos {cos} diff {diff}",
                        case.text
                    );
                }
            }
        });
        for _ in 0..2 {
            scope.spawn(|| {
                let lease = device().acquire().unwrap();
                for _ in 0..20 {
                    let got = s.mlp.forward(lease.stream(), &mlp_input, 4).unwrap();
                    assert_close(&got, &mlp_want, "concurrent mlp");
                }
            });
            scope.spawn(|| {
                let lease = device().acquire().unwrap();
                for _ in 0..20 {
                    let got = s.conv.forward(lease.stream(), &conv_input, 2, 16).unwrap();
                    assert_close(&got, &conv_want, "concurrent conv");
                }
            });
        }
    });
}
