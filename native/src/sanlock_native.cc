// The few Linux calls Node cannot make itself: peer credentials of a unix socket,
// pidfd-based signalling (so a recycled pid is never signalled), and watchdog ioctls.
// Every function returns a number: >= 0 on success, -errno on failure, so the
// TypeScript side maps failures to sanlock's -errno result codes without exceptions.
#include <napi.h>

#include <cerrno>
#include <csignal>
#include <linux/watchdog.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

void RegisterLoggingNative(Napi::Env env, Napi::Object exports);  // logging_native.cc
void RegisterDirectIo(Napi::Env env, Napi::Object exports);       // direct_io.cc

namespace {

bool IntArgs(const Napi::CallbackInfo& info, size_t n) {
  if (info.Length() < n) {
    Napi::TypeError::New(info.Env(), "wrong number of arguments").ThrowAsJavaScriptException();
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    if (!info[i].IsNumber()) {
      Napi::TypeError::New(info.Env(), "arguments must be numbers").ThrowAsJavaScriptException();
      return false;
    }
  }
  return true;
}

// peerCred(fd) -> { pid, uid, gid } or -errno
Napi::Value PeerCred(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IntArgs(info, 1)) return env.Null();
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct ucred cred {};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
    return Napi::Number::New(env, -errno);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, cred.pid));
  out.Set("uid", Napi::Number::New(env, cred.uid));
  out.Set("gid", Napi::Number::New(env, cred.gid));
  return out;
}

// pidfdOpen(pid) -> fd or -errno (-ENOSYS on kernels before 5.3)
Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IntArgs(info, 1)) return env.Null();
  int pid = info[0].As<Napi::Number>().Int32Value();
  long fd = syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return Napi::Number::New(env, -errno);
  return Napi::Number::New(env, static_cast<double>(fd));
}

// pidfdSendSignal(pidfd, sig) -> 0 or -errno (-ESRCH once the process has exited)
Napi::Value PidfdSendSignal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IntArgs(info, 2)) return env.Null();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int sig = info[1].As<Napi::Number>().Int32Value();
  long rv = syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0);
  if (rv < 0) return Napi::Number::New(env, -errno);
  return Napi::Number::New(env, 0);
}

// killPid(pid, sig) -> 0 or -errno; fallback where pidfd is unavailable
Napi::Value KillPid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IntArgs(info, 2)) return env.Null();
  int pid = info[0].As<Napi::Number>().Int32Value();
  int sig = info[1].As<Napi::Number>().Int32Value();
  if (pid <= 0) return Napi::Number::New(env, -EINVAL);  // never a process group
  if (kill(pid, sig) < 0) return Napi::Number::New(env, -errno);
  return Napi::Number::New(env, 0);
}

// closeFd(fd) -> 0 or -errno (for pidfds, which Node's fs does not own)
Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IntArgs(info, 1)) return env.Null();
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (close(fd) < 0) return Napi::Number::New(env, -errno);
  return Napi::Number::New(env, 0);
}

// wdSetTimeout(fd, seconds) -> timeout the driver accepted, or -errno
Napi::Value WdSetTimeout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IntArgs(info, 2)) return env.Null();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int timeout = info[1].As<Napi::Number>().Int32Value();
  if (ioctl(fd, WDIOC_SETTIMEOUT, &timeout) < 0) return Napi::Number::New(env, -errno);
  return Napi::Number::New(env, timeout);
}

// wdKeepalive(fd) -> 0 or -errno
Napi::Value WdKeepalive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IntArgs(info, 1)) return env.Null();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int dummy = 0;
  if (ioctl(fd, WDIOC_KEEPALIVE, &dummy) < 0) return Napi::Number::New(env, -errno);
  return Napi::Number::New(env, 0);
}

// lockFile(fd) -> 0 or -errno: F_SETLK write lock on the whole file (the pid lockfile that keeps
// two daemons off one run dir; the lock lives as long as the fd stays open)
Napi::Value LockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IntArgs(info, 1)) return env.Null();
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = 0;
  lock.l_len = 0;
  if (fcntl(fd, F_SETLK, &lock) < 0) return Napi::Number::New(env, -errno);
  return Napi::Number::New(env, 0);
}

// mlockAll(level) -> 0 or -errno: sanlock's mlock_level 1 = MCL_CURRENT, 2 = MCL_CURRENT|MCL_FUTURE
Napi::Value MlockAll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IntArgs(info, 1)) return env.Null();
  int level = info[0].As<Napi::Number>().Int32Value();
  int flags = level >= 2 ? (MCL_CURRENT | MCL_FUTURE) : MCL_CURRENT;
  if (level <= 0) return Napi::Number::New(env, 0);
  // Locking pages under a finite RLIMIT_MEMLOCK makes V8's later mprotect calls fail and
  // abort the process, so lock only once the limit is unlimited (as sanlock requires too).
  struct rlimit rl {};
  rl.rlim_cur = RLIM_INFINITY;
  rl.rlim_max = RLIM_INFINITY;
  if (setrlimit(RLIMIT_MEMLOCK, &rl) < 0) return Napi::Number::New(env, -errno);
  if (mlockall(flags) < 0) return Napi::Number::New(env, -errno);
  return Napi::Number::New(env, 0);
}

// setSchedRR() -> 0 or -errno: SCHED_RR at the highest priority (daemon -h 1)
Napi::Value SetSchedRR(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct sched_param sp {};
  sp.sched_priority = sched_get_priority_max(SCHED_RR);
  if (sched_setscheduler(0, SCHED_RR, &sp) < 0) return Napi::Number::New(env, -errno);
  return Napi::Number::New(env, 0);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("peerCred", Napi::Function::New(env, PeerCred));
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen));
  exports.Set("pidfdSendSignal", Napi::Function::New(env, PidfdSendSignal));
  exports.Set("killPid", Napi::Function::New(env, KillPid));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("wdSetTimeout", Napi::Function::New(env, WdSetTimeout));
  exports.Set("wdKeepalive", Napi::Function::New(env, WdKeepalive));
  exports.Set("lockFile", Napi::Function::New(env, LockFile));
  exports.Set("mlockAll", Napi::Function::New(env, MlockAll));
  exports.Set("setSchedRR", Napi::Function::New(env, SetSchedRR));
  RegisterLoggingNative(env, exports);  // logging_native.cc: syslog, sd_notify
  RegisterDirectIo(env, exports);       // direct_io.cc: O_DIRECT I/O threads
  return exports;
}

}  // namespace

NODE_API_MODULE(sanlock_native, Init)
