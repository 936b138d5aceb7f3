// syslog(3) and sd_notify for the daemon: Node has neither, and both need unix datagram
// sockets, which Node cannot send.
//
// syslog() is a blocking send to /dev/log: a stalled syslog daemon must never stall the event
// loop that renews the leases, so messages go through a bounded queue to one writer thread,
// the way sanlock's own log thread does it (4096 entries, then drops counted and reported).
#include <napi.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

namespace {

struct SyslogEntry {
  int level;
  std::string msg;
};

constexpr size_t kSyslogQueueMax = 4096;

std::mutex g_mu;
std::condition_variable g_cv;
std::condition_variable g_drained;
std::deque<SyslogEntry> g_queue;
unsigned g_dropped = 0;
bool g_open = false;
bool g_stop = false;
bool g_busy = false;
std::string g_ident;  // openlog keeps the pointer: it must outlive every syslog() call

void SyslogThread() {
  std::unique_lock<std::mutex> lk(g_mu);
  for (;;) {
    g_cv.wait(lk, [] { return g_stop || !g_queue.empty(); });
    if (g_queue.empty() && g_stop) break;
    SyslogEntry e = std::move(g_queue.front());
    g_queue.pop_front();
    unsigned dropped = g_dropped;
    g_dropped = 0;
    g_busy = true;
    lk.unlock();
    if (dropped) syslog(e.level, "dropped %u entries", dropped);
    syslog(e.level, "%s", e.msg.c_str());
    lk.lock();
    g_busy = false;
    if (g_queue.empty()) g_drained.notify_all();
  }
  closelog();
  g_open = false;
  g_drained.notify_all();
}

// syslogOpen(ident, facility) -> 0; LOG_CONS|LOG_PID like sanlock. Idempotent.
Napi::Value SyslogOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "syslogOpen(ident, facility)").ThrowAsJavaScriptException();
    return env.Null();
  }
  std::lock_guard<std::mutex> lk(g_mu);
  if (g_open) return Napi::Number::New(env, 0);
  g_ident = info[0].As<Napi::String>().Utf8Value();
  // No LOG_CONS (sanlock sets it): with no syslog daemon listening, glibc then writes every
  // message to /dev/console, often a serial port at a few kB/s, and a client flooding us with
  // bad messages (each logged at LOG_ERR) kept a core busy in the tty driver with interrupts
  // off, stalling the whole host, our renewals included (found by the long fuzz runs). Without
  // a syslog daemon the messages still reach the log file and the log_dump buffer.
  openlog(g_ident.c_str(), LOG_PID, info[1].As<Napi::Number>().Int32Value());
  g_open = true;
  g_stop = false;
  // detached: a joinable std::thread still running at process exit would call terminate()
  std::thread(SyslogThread).detach();
  return Napi::Number::New(env, 0);
}

// syslogWrite(level, msg) -> 0 queued, 1 dropped (queue full), -EBADF when not open
Napi::Value SyslogWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsString()) {
    Napi::TypeError::New(env, "syslogWrite(level, msg)").ThrowAsJavaScriptException();
    return env.Null();
  }
  int level = info[0].As<Napi::Number>().Int32Value();
  std::string msg = info[1].As<Napi::String>().Utf8Value();
  std::lock_guard<std::mutex> lk(g_mu);
  if (!g_open || g_stop) return Napi::Number::New(env, -EBADF);
  if (g_queue.size() >= kSyslogQueueMax) {
    g_dropped++;
    return Napi::Number::New(env, 1);
  }
  g_queue.push_back({level, std::move(msg)});
  g_cv.notify_one();
  return Napi::Number::New(env, 0);
}

// syslogClose(waitMs) -> number of entries still queued when the wait ended (0 = all sent)
Napi::Value SyslogClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int wait_ms = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 1000;
  std::unique_lock<std::mutex> lk(g_mu);
  if (!g_open) return Napi::Number::New(env, 0);
  g_stop = true;
  g_cv.notify_one();
  // bounded: exit must not hang on a stuck syslog daemon
  g_drained.wait_for(lk, std::chrono::milliseconds(wait_ms), [] { return !g_open; });
  return Napi::Number::New(env, static_cast<double>(g_queue.size()));
}

// sdNotify(socketPath, message) -> bytes sent or -errno. A leading '@' names an abstract
// socket, as systemd's NOTIFY_SOCKET does.
Napi::Value SdNotify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
    Napi::TypeError::New(env, "sdNotify(path, message)").ThrowAsJavaScriptException();
    return env.Null();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  std::string msg = info[1].As<Napi::String>().Utf8Value();
  struct sockaddr_un sa {};
  sa.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(sa.sun_path)) return Napi::Number::New(env, -ENAMETOOLONG);
  memcpy(sa.sun_path, path.data(), path.size());
  socklen_t len = offsetof(struct sockaddr_un, sun_path) + path.size();
  if (path[0] == '@') sa.sun_path[0] = '\0';
  else len += 1;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Napi::Number::New(env, -errno);
  ssize_t n = sendto(fd, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
                     reinterpret_cast<struct sockaddr*>(&sa), len);
  int err = errno;
  close(fd);
  return Napi::Number::New(env, n < 0 ? -err : static_cast<double>(n));
}

}  // namespace

void RegisterLoggingNative(Napi::Env env, Napi::Object exports) {
  exports.Set("syslogOpen", Napi::Function::New(env, SyslogOpen));
  exports.Set("syslogWrite", Napi::Function::New(env, SyslogWrite));
  exports.Set("syslogClose", Napi::Function::New(env, SyslogClose));
  exports.Set("sdNotify", Napi::Function::New(env, SdNotify));
}
