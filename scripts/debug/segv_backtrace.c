/* LD_PRELOAD shim for hunting crashes on machines without a debugger (the GPU machine has none).
 * On SIGSEGV or SIGBUS it prints the faulting thread's return addresses and /proc/self/maps to
 * stderr, then dies of the same signal. Resolve the addresses offline against the unstripped
 * binary: address - start of the binary's r-xp mapping + that mapping's offset, then
 * `addr2line -f -C -e <binary> 0x...`.
 *
 *   gcc -shared -fPIC -o /tmp/segv.so scripts/debug/segv_backtrace.c
 *   LD_PRELOAD=/tmp/segv.so ./test-binary --include-ignored
 */
#define _GNU_SOURCE
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static void say(const char *s) { (void)!write(2, s, strlen(s)); }

static void on_fault(int sig, siginfo_t *info, void *ctx) {
  (void)info;
  (void)ctx;
  void *frames[64];
  int n = backtrace(frames, 64);
  say("\n=== fatal signal, backtrace ===\n");
  backtrace_symbols_fd(frames, n, 2);
  say("=== maps ===\n");
  int fd = open("/proc/self/maps", O_RDONLY);
  if (fd >= 0) {
    char buf[4096];
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0) (void)!write(2, buf, (size_t)r);
    close(fd);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

__attribute__((constructor)) static void install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGSEGV, &sa, 0);
  sigaction(SIGBUS, &sa, 0);
}
