// The 3xTF32 split-K GEMM (backends/cuda/kernels/tf32x3.cu) vs cuBLAS f32 (no TF32) at MiniLM's
// batch-1 shapes (128 rows): time per GEMM from a CUDA graph of 48 of them (weights rotating over
// 6 copies, as over 6 layers) replayed 20 times, and the largest error against an f64 reference
// relative to the sum of |products|. Tile configurations x K slices, to choose the kernel's.
// Run on the GPU machine: scripts/peer/gpu/tf32x3/run.sh (nvcc there; no Rust needed).
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <cmath>
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include "kern.cu"
#define CK(x) do { auto e = (x); if (e) { printf("err %d at %s:%d\n", (int)e, __FILE__, __LINE__); exit(1);} } while (0)
const int L = 6;
template <int BM, int BN, int WN, int KG, int ST> __global__ void vk(const float* x, const float* w, float* parts, int m, int n, int k, int kslice) {
  extern __shared__ __align__(16) float dsm[];
  tf32x3_parts<BM, BN, WN, KG, ST>(x, w, parts, m, n, k, kslice, dsm);
}
template <class F> float timed(cudaStream_t s, F f, int reps = 48, int replays = 20) {
  for (int i = 0; i < 3; i++) f(i);
  CK(cudaStreamSynchronize(s));
  cudaGraph_t g; cudaGraphExec_t ge;
  CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < reps; i++) f(i);
  CK(cudaStreamEndCapture(s, &g));
  CK(cudaGraphInstantiate(&ge, g, 0));
  CK(cudaGraphLaunch(ge, s)); CK(cudaStreamSynchronize(s));
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
  cudaEventRecord(a, s);
  for (int i = 0; i < replays; i++) CK(cudaGraphLaunch(ge, s));
  cudaEventRecord(b, s); CK(cudaStreamSynchronize(s));
  float ms; cudaEventElapsedTime(&ms, a, b);
  return ms * 1e3f / (reps * replays);
}
int main() {
  cudaStream_t s; CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cublasHandle_t h; cublasCreate(&h); cublasSetStream(h, s);
  void* ws; cudaMalloc(&ws, 32 << 20); cublasSetWorkspace(h, ws, 32 << 20);
  int shapes[4][2] = {{1152, 384}, {384, 384}, {1536, 384}, {384, 1536}};
  int Ms[] = {128};
  for (int M : Ms) for (auto& sh : shapes) {
    int N = sh[0], K = sh[1];
    std::vector<float> hx(M * K), hw((size_t)N * K);
    srand(N * 7 + K + M);
    for (auto& v : hx) v = (rand() / (float)RAND_MAX - 0.5f) * 2;
    for (auto& v : hw) v = (rand() / (float)RAND_MAX - 0.5f) * 0.2f;
    float *x, *w[L], *parts, *out;
    cudaMalloc(&x, M * K * 4); cudaMemcpy(x, hx.data(), M * K * 4, cudaMemcpyHostToDevice);
    for (int l = 0; l < L; l++) { cudaMalloc(&w[l], (size_t)N * K * 4); cudaMemcpy(w[l], hw.data(), (size_t)N * K * 4, cudaMemcpyHostToDevice); }
    cudaMalloc(&parts, 16 * M * N * 4); cudaMalloc(&out, M * N * 4);
    // reference (double)
    std::vector<double> ref(M * N), mag(M * N);
    for (int r = 0; r < M; r++) for (int c = 0; c < N; c++) { double a = 0, m = 0; for (int k = 0; k < K; k++) { double p = (double)hx[r*K+k] * hw[(size_t)c*K+k]; a += p; m += fabs(p);} ref[r*N+c] = a; mag[r*N+c] = m; }
    auto err = [&](std::vector<float>& got) { double e = 0; for (int i = 0; i < M * N; i++) e = fmax(e, fabs(got[i] - ref[i]) / mag[i]); return e; };
    float one = 1, zero = 0;
    // cuBLAS
    auto cub = [&](int i) { cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, w[i % L], K, x, K, &zero, out, N); };
    float tc = timed(s, cub);
    cub(0); cudaStreamSynchronize(s);
    std::vector<float> got(M * N); cudaMemcpy(got.data(), out, M * N * 4, cudaMemcpyDeviceToHost);
    double ec = err(got);
    // cuBLAS split 8 strided batched
    float t8 = -1;
    if (K % 8 == 0) { int ks = K / 8;
      auto sb = [&](int i) { cublasSgemmStridedBatched(h, CUBLAS_OP_T, CUBLAS_OP_N, N, M, ks, &one, w[i % L], K, ks, x, K, ks, &zero, parts, N, (long long)M * N, 8); };
      t8 = timed(s, sb); }
    printf("M %3d N %4d K %4d | cublas %6.2f us (err %.2e) | cublas-split8 %6.2f |", M, N, K, tc, ec, t8);
    printf("\n");
    auto try_variant = [&](const char* name, auto kern, int bm, int bn, int threads, int smem) {
      cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
      printf("   %-26s", name);
      int ss[] = {1, 2, 3, 4, 6, 8};
      for (int S : ss) {
        if (K % S || (K / S) % 32) continue;
        int ksl = K / S;
        dim3 grid(N / bn, (M + bm - 1) / bm, S);
        auto ours = [&](int i) { kern<<<grid, threads, smem, s>>>(x, w[i % L], parts, M, N, K, ksl); };
        float to = timed(s, ours);
        ours(0); CK(cudaStreamSynchronize(s));
        std::vector<float> p(S * M * N); cudaMemcpy(p.data(), parts, S * M * N * 4, cudaMemcpyDeviceToHost);
        for (int i = 0; i < M * N; i++) { float a = p[i]; for (int z = 1; z < S; z++) a += p[z * M * N + i]; got[i] = a; }
        printf(" S%d %5.2f(%.0e)", S, to, err(got));
      }
      printf("\n");
    };
#define V(BM, BN, WN, KG, ST) try_variant(#BM "x" #BN " wn" #WN " kg" #KG " st" #ST, vk<BM, BN, WN, KG, ST>, BM, BN, BM / 16 * WN * KG * 32, ST * (BM + BN) * TLD * 4)
    V(32, 64, 2, 1, 3); V(32, 64, 2, 2, 3); V(32, 32, 2, 2, 3); V(16, 64, 2, 2, 3); V(16, 64, 4, 2, 3); V(64, 64, 2, 1, 3); V(64, 64, 2, 2, 3); V(32, 128, 4, 2, 3);
    printf("\n");
    cudaFree(x); for (int l = 0; l < L; l++) cudaFree(w[l]); cudaFree(parts); cudaFree(out);
  }
  CK(cudaGetLastError());
}
