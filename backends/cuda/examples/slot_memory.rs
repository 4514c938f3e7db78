//! Device memory taken by each step of a slot's life (diagnostics): open the device, then for
//! several streams in turn: create it, allocate on it, run a kernel, synchronise; then run
//! kernels on all of them from one thread each, at once. Prints `cuMemGetInfo`'s used MiB after
//! each step. Needs a GPU and `--features cuda`:
//!
//! `cargo run --release -p streampool-cuda --features cuda --example slot_memory`

use streampool_core::{Backend, Stream};
use streampool_cuda::CudaBackend;

fn used(b: &CudaBackend) -> usize {
    b.memory().map_or(0, |m| m.device_used >> 20)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let backend = CudaBackend::open(0)?;
    let base = used(&backend);
    println!("opened: {base} MiB");
    let mut streams = Vec::new();
    for slot in 0..4 {
        let before = used(&backend);
        let s = backend.new_stream(slot)?;
        let created = used(&backend);
        let buf = s.alloc(1 << 20)?;
        let allocated = used(&backend);
        s.fill_u32(&buf, 7)?;
        s.synchronize()?;
        let ran = used(&backend);
        println!(
            "slot {slot}: created +{}, 1 MiB from its pool +{}, first kernel +{} MiB",
            created - before,
            allocated - created,
            ran - allocated
        );
        streams.push((s, buf));
    }
    let before = used(&backend);
    std::thread::scope(|scope| {
        for (s, buf) in &streams {
            scope.spawn(move || {
                for _ in 0..100 {
                    s.mul_add_u32(buf, 3, 1).unwrap();
                }
                s.synchronize().unwrap();
            });
        }
    });
    println!("4 threads running kernels at once: +{} MiB", used(&backend) - before);
    let before = used(&backend);
    let more: Vec<_> = (4..8).map(|slot| backend.new_stream(slot)).collect::<Result<_, _>>()?;
    println!("4 more streams created: +{} MiB", used(&backend) - before);
    drop(more);
    println!("total {} MiB over the opened device", used(&backend) - base);
    Ok(())
}
