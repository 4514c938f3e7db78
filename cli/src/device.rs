//! Choosing devices from `--device`, and running generic code on whichever backend they are.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use streampool_core::{Device, PoolConfig};
use streampool_cpu::CpuBackend;
use streampool_cuda::CudaBackend;
use streampool_metal::MetalBackend;
use streampool_models::loading::ModelFiles;
use streampool_models::{MiniLm, ModelError, Precision};
use streampool_tensor::Ops;

/// `--device`: a backend and which of its devices.
///
/// | spelling | devices |
/// |---|---|
/// | `auto` | GPU 0 if CUDA works, else the Mac's GPU (a `metal` build), else the CPU |
/// | `cpu` | the CPU |
/// | `cpu:0,1` | two CPU devices: separate pools, models and engines on the same cores (testing) |
/// | `cuda`, `cuda:1` | NVIDIA GPU 0, GPU 1 (a build with `--features cuda`) |
/// | `cuda:0,2`, `cuda:all` | GPUs 0 and 2, every GPU: one device each, the work spread over them |
/// | `metal` (`mps`) | the Mac's Apple GPU (a macOS build with `--features metal`) |
///
/// ```
/// use streampool_cli::device::DeviceChoice;
/// let gpus: DeviceChoice = "cuda:0,2".parse().unwrap();
/// assert_eq!(gpus, DeviceChoice::Cuda(Some(vec![0, 2])));
/// assert_eq!(gpus.to_string(), "cuda:0,2");
/// assert!("cuda:0,0".parse::<DeviceChoice>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// CUDA GPU 0 if a GPU and its libraries are present, else Metal (in a macOS build with
    /// `--features metal`), else the CPU.
    #[default]
    Auto,
    /// CPU devices, by number (`cpu` is `[0]`).
    Cpu(Vec<usize>),
    /// NVIDIA GPUs by ordinal (`None`: every GPU of the machine).
    Cuda(Option<Vec<usize>>),
    /// The Mac's Apple GPU (experimental: never run by the project).
    Metal,
}

impl FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        let (kind, list) = match s.split_once(':') {
            Some((kind, list)) => (kind, Some(list)),
            None => (s.as_str(), None),
        };
        let numbers = |list: &str| -> Result<Vec<usize>, String> {
            let mut out: Vec<usize> = Vec::new();
            for part in list.split(',').map(str::trim) {
                let n = part.parse().map_err(|_| {
                    format!("{s:?}: {part:?} is not a device number (expected e.g. cuda:0,2)")
                })?;
                if out.contains(&n) {
                    return Err(format!("{s:?}: device {n} is listed twice"));
                }
                out.push(n);
            }
            Ok(out)
        };
        match (kind, list) {
            ("auto", None) => Ok(Self::Auto),
            ("cpu", None) => Ok(Self::Cpu(vec![0])),
            ("cpu", Some(list)) => numbers(list).map(Self::Cpu),
            ("cuda" | "gpu", None) => Ok(Self::Cuda(Some(vec![0]))),
            ("cuda" | "gpu", Some("all")) => Ok(Self::Cuda(None)),
            ("cuda" | "gpu", Some(list)) => numbers(list).map(|l| Self::Cuda(Some(l))),
            ("metal" | "mps", None | Some("0")) => Ok(Self::Metal),
            _ => Err(format!(
                "unknown device {s:?}: expected auto, cpu, cpu:0,1, cuda, cuda:1, cuda:0,2, \
                 cuda:all or metal"
            )),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |l: &[usize]| l.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu(l) if l == &[0] => f.write_str("cpu"),
            Self::Cpu(l) => write!(f, "cpu:{}", list(l)),
            Self::Cuda(None) => f.write_str("cuda:all"),
            Self::Cuda(Some(l)) => write!(f, "cuda:{}", list(l)),
            Self::Metal => f.write_str("metal"),
        }
    }
}

/// Code that runs on any backend.
pub trait OnDevice {
    /// What it returns.
    type Output;
    /// Run on `device`.
    fn run<B: Ops>(self, device: Device<B>) -> Result<Self::Output, Box<dyn std::error::Error>>;
    /// Run on `devices` (at least one, of one backend, in the order given). Default: one device
    /// only; a list is an error.
    fn run_on<B: Ops>(
        self,
        mut devices: Vec<Device<B>>,
    ) -> Result<Self::Output, Box<dyn std::error::Error>>
    where
        Self: Sized,
    {
        match devices.len() {
            1 => self.run(devices.remove(0)),
            n => Err(format!("this command runs on one device; {n} were given").into()),
        }
    }
}

/// Open the chosen devices, each with its own pool of `config`, and run `job` on them. In a
/// build without the `cuda` (`metal`) feature, opening CUDA (Metal) fails with
/// `BackendError::Unavailable`, and `auto` goes on to the next backend. A device that cannot be
/// opened is an error naming it.
pub fn with_device<J: OnDevice>(
    choice: DeviceChoice,
    config: PoolConfig,
    job: J,
) -> Result<J::Output, Box<dyn std::error::Error>> {
    match choice {
        DeviceChoice::Cpu(list) => job.run_on(
            list.into_iter()
                .map(|i| Device::new(CpuBackend::with_ordinal(i), config.clone()))
                .collect(),
        ),
        DeviceChoice::Cuda(list) => {
            let list = match list {
                Some(list) => list,
                None => match CudaBackend::device_count() {
                    0 => {
                        // Opening GPU 0 says why there is none (no driver, no GPU, no feature).
                        let why = CudaBackend::open(0).err().map(|e| format!(": {e}"));
                        let why = why.unwrap_or_default();
                        return Err(format!("cuda:all: no GPU can be opened{why}").into());
                    }
                    n => (0..n).collect(),
                },
            };
            let mut devices = Vec::with_capacity(list.len());
            for i in list {
                let backend = CudaBackend::open(i).map_err(|e| format!("cuda:{i}: {e}"))?;
                devices.push(Device::new(backend, config.clone()));
            }
            job.run_on(devices)
        }
        DeviceChoice::Metal => job.run(Device::new(MetalBackend::open()?, config)),
        DeviceChoice::Auto => {
            if let Ok(cuda) = CudaBackend::open(0) {
                return job.run_on(vec![Device::new(cuda, config)]);
            }
            match MetalBackend::open() {
                Ok(metal) => job.run_on(vec![Device::new(metal, config)]),
                Err(_) => job.run_on(vec![Device::new(CpuBackend::new(), config)]),
            }
        }
    }
}

/// A copy of the model in `files` on each of `devices`, loaded at once (one thread per
/// device), in order. A device's error names the device (with several); the model's own
/// errors (its files, an unsupported precision) stay typed `ModelError`s.
pub fn load_copies<B: Ops>(
    devices: &[Device<B>],
    files: &ModelFiles,
    precision: Precision,
) -> Result<Vec<Arc<MiniLm<B>>>, Box<dyn std::error::Error>> {
    let several = devices.len() > 1;
    let load = |device: &Device<B>| -> Result<Arc<MiniLm<B>>, LoadFailure> {
        MiniLm::load_with(device, files, precision).map(Arc::new).map_err(|e| match e {
            ModelError::Backend(e) if several => {
                LoadFailure::Device(format!("{}: {e}", device.label()))
            }
            e => LoadFailure::Model(e),
        })
    };
    let boxed = |e: LoadFailure| -> Box<dyn std::error::Error> {
        match e {
            LoadFailure::Model(e) => Box::new(e),
            LoadFailure::Device(message) => message.into(),
        }
    };
    if !several {
        return Ok(vec![load(&devices[0]).map_err(boxed)?]);
    }
    let loaded: Vec<Result<Arc<MiniLm<B>>, LoadFailure>> = std::thread::scope(|s| {
        let loads: Vec<_> = devices.iter().map(|d| s.spawn(move || load(d))).collect();
        loads
            .into_iter()
            .map(|l| {
                l.join().unwrap_or_else(|panic| {
                    Err(LoadFailure::Device(streampool_core::panic_text(&*panic)))
                })
            })
            .collect()
    });
    loaded.into_iter().map(|l| l.map_err(boxed)).collect()
}

/// Why a copy did not load: the model's own error, or a device's (its label first).
enum LoadFailure {
    Model(ModelError),
    Device(String),
}

#[cfg(test)]
mod tests {
    use super::DeviceChoice;

    #[test]
    fn every_spelling_parses_and_prints_back() {
        for (text, choice) in [
            ("auto", DeviceChoice::Auto),
            ("cpu", DeviceChoice::Cpu(vec![0])),
            ("cpu:0,1,2", DeviceChoice::Cpu(vec![0, 1, 2])),
            ("cuda", DeviceChoice::Cuda(Some(vec![0]))),
            ("cuda:1", DeviceChoice::Cuda(Some(vec![1]))),
            ("cuda:0,2", DeviceChoice::Cuda(Some(vec![0, 2]))),
            ("cuda:all", DeviceChoice::Cuda(None)),
            ("metal", DeviceChoice::Metal),
        ] {
            assert_eq!(text.parse::<DeviceChoice>(), Ok(choice.clone()), "{text}");
            let printed = choice.to_string();
            let again = if text == "cuda" { "cuda:0" } else { text };
            assert_eq!(printed, again);
        }
        assert_eq!("CUDA:0, 2".parse(), Ok(DeviceChoice::Cuda(Some(vec![0, 2]))));
        assert_eq!("mps".parse(), Ok(DeviceChoice::Metal));
    }

    #[test]
    fn bad_spellings_say_what_is_wrong() {
        for (text, says) in [
            ("tpu", "unknown device"),
            ("cuda:", "is not a device number"),
            ("cuda:one", "is not a device number"),
            ("cuda:1,1", "listed twice"),
            ("cpu:all", "is not a device number"),
            ("metal:1", "unknown device"),
        ] {
            let error = text.parse::<DeviceChoice>().unwrap_err();
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}
