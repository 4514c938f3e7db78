//! CPU compute kernels: plain functions over slices, run by the tensor layer inside stream work.
