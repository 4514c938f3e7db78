//! Builds the Metal kernels' shared source as C++ for the host (`../kernels/host.cpp`, which
//! includes `dialect.h`, `params.h` and `ops.h`): the same per-thread arithmetic the Metal
//! Shading Language build runs, with each threadgroup's phases run one after the other.

fn main() {
    let kernels = std::path::Path::new("../kernels");
    for file in ["host.cpp", "dialect.h", "params.h", "ops.h"] {
        println!("cargo:rerun-if-changed={}", kernels.join(file).display());
    }
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        // Optimised in every profile: the conformance suite runs MiniLM-sized GEMMs through it.
        .opt_level(2)
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .include(kernels)
        .file(kernels.join("host.cpp"))
        .compile("streampool_msl_host");
}
