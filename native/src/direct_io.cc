// O_DIRECT disk I/O on native threads, for src/storage/io-context.ts.
//
// Why native threads and not worker_threads or libuv's pool:
// - a worker_thread is a whole V8 isolate (~9 MiB of RSS each) and every I/O cost two
//   structured-clone messages; a pthread here costs a small stack and a condition variable;
// - libuv's pool has 4 threads shared with every fs/dns call of the process: a few hung disks
//   could occupy all of them. These threads belong to the IoContext that started them, so a hung
//   device holds only its own context's threads (maxWorkers), never another lockspace's.
//
// Each IoThread runs one job at a time, handed over under its mutex. The result goes back to the
// main thread through the thread's own napi threadsafe function (unref'd: a stuck thread never
// keeps the process alive). The data buffer of a job is a page-aligned external Buffer made by
// ioAlloc (mmap'd, so a very late I/O after its memory was released at exit can at worst fail
// with EFAULT); the job also holds a strong reference to it until the completion is delivered.
#include <napi.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>

#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

enum Op { kOpen = 0, kSize = 1, kRead = 2, kWrite = 3, kClose = 4, kChain = 5 };

// Release generation of an IoContext's injected stalls (test hook, see DirectDisk.injectStall).
struct Gate {
  std::mutex m;
  std::condition_variable cv;
  uint32_t gen = 0;
};

struct Job {
  double id = 0;
  int op = 0;
  int fd = -1;
  int64_t offset = 0;
  size_t length = 0;
  uint8_t* data = nullptr;
  // Strong reference to the JS Buffer behind `data`, deleted on the main thread only.
  napi_ref dataRef = nullptr;
  double workerId = 0;
  std::string path;
  bool readOnly = false;
  uint32_t stallMs = 0;
  std::shared_ptr<Gate> gate;
  uint32_t stallGen = 0;
  // Results: err is a positive errno, 0 on success.
  int err = 0;
  std::string message;
  int64_t value = 0;  // fd of an open
  bool isBlock = false;
  int64_t logical = 512;
  int64_t physical = 512;
  int64_t size = 0;
  // kChain: write `length` bytes from data[0] at `offset`; read len2 bytes at off2 into
  // data[page]; if the first cmpLen bytes read equal data[2 page], write len3 bytes from
  // data[3 page] at off3. One thread hop for three dependent I/Os; the caller decides what the
  // bytes mean. The chain stops at the first step that fails, ends past its deadline (step 1:
  // deadline1, an absolute CLOCK_MONOTONIC ms; later steps: stepTimeoutMs after they start) or
  // finds other bytes, and before any step once the caller has cancelled it (abandoned).
  int64_t off2 = 0;
  int64_t off3 = 0;
  size_t len2 = 0;
  size_t len3 = 0;
  size_t cmpLen = 0;
  size_t page = 0;
  double deadline1 = 0;
  double stepTimeoutMs = 0;
  // Progress, under IoThread::m: the step running or last run (1..3), when it started, whether
  // it has returned, and the caller's cancel.
  int step = 0;
  double stepStart = 0;
  bool stepDone = false;
  bool cancel = false;
  // Test hook: a stall (stallMs, gate) happens inside each step whose bit (1 << (step - 1)) is
  // set, before its syscall.
  int stallSteps = 0;
  // Results: lastStep ran last; late: it ended past its deadline; match: the compare held.
  int lastStep = 0;
  bool late = false;
  bool match = false;
};

// Whether the environment that started the threads still exists. Its cleanup hook clears the
// flag under the mutex, before Node deletes the threadsafe functions, so a thread that finishes
// a (late) I/O while the process shuts down never touches a freed one.
struct EnvState {
  std::mutex m;
  bool alive = true;
};

struct IoThread;
void CallJs(Napi::Env env, Napi::Function cb, IoThread* ctx, Job* job);
using Tsfn = Napi::TypedThreadSafeFunction<IoThread, Job, CallJs>;

struct IoThread {
  std::mutex m;
  std::condition_variable cv;
  Job* job = nullptr;
  bool stop = false;
  // CLOCK_MONOTONIC ms at which the last job's syscall returned (its result may still be on its
  // way to the main thread), and that job's id.
  double doneAt = 0;
  double doneId = 0;
  Tsfn tsfn;
  double workerId = 0;
  std::shared_ptr<EnvState> envState;
};

void Stall(Job* job) {
  if (job->stallMs == 0 || !job->gate) return;
  Gate& g = *job->gate;
  std::unique_lock<std::mutex> lk(g.m);
  g.cv.wait_for(lk, std::chrono::milliseconds(job->stallMs), [&] { return g.gen != job->stallGen; });
}

void Fail(Job* job, int err, const std::string& what) {
  job->err = err;
  job->message = what + ": " + strerror(err);
}

bool BlockInfo(Job* job, int fd) {
  int logical = 0;
  unsigned int physical = 0;
  uint64_t bytes = 0;
  if (ioctl(fd, BLKSSZGET, &logical) < 0) return Fail(job, errno, "BLKSSZGET"), false;
  if (ioctl(fd, BLKPBSZGET, &physical) < 0) physical = static_cast<unsigned int>(logical);
  if (ioctl(fd, BLKGETSIZE64, &bytes) < 0) return Fail(job, errno, "BLKGETSIZE64"), false;
  job->logical = logical;
  job->physical = physical ? physical : static_cast<unsigned int>(logical);
  job->size = static_cast<int64_t>(bytes);
  return true;
}

void RunOpen(Job* job) {
  int flags = (job->readOnly ? O_RDONLY : O_RDWR) | O_DIRECT | O_SYNC | O_CLOEXEC;
  int fd;
  do fd = open(job->path.c_str(), flags);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return Fail(job, errno, "open " + job->path);
  struct stat st {};
  if (fstat(fd, &st) < 0) {
    Fail(job, errno, "fstat " + job->path);
    close(fd);
    return;
  }
  if (S_ISBLK(st.st_mode)) {
    job->isBlock = true;
    if (!BlockInfo(job, fd)) {
      close(fd);
      return;
    }
  } else if (S_ISREG(st.st_mode)) {
    job->size = st.st_size;
  } else {
    // sanlock only ever uses regular files and block devices for leases.
    job->err = EINVAL;
    job->message = job->path + ": not a regular file or block device";
    close(fd);
    return;
  }
  job->value = fd;
}

void RunSize(Job* job) {
  struct stat st {};
  if (fstat(job->fd, &st) < 0) return Fail(job, errno, "fstat");
  if (S_ISBLK(st.st_mode)) {
    BlockInfo(job, job->fd);
    return;
  }
  job->size = st.st_size;
}

void DoRw(Job* job, bool rd, uint8_t* data, size_t length, int64_t offset) {
  size_t done = 0;
  while (done < length) {
    ssize_t n = rd ? pread(job->fd, data + done, length - done, offset + done)
                   : pwrite(job->fd, data + done, length - done, offset + done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Fail(job, errno, rd ? "pread" : "pwrite");
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  if (done < length) {
    // sanlock fails an I/O whose completion is shorter than asked with -EMSGSIZE.
    job->err = EMSGSIZE;
    job->message = std::string(rd ? "short read " : "short write ") + std::to_string(done) + " of " +
                   std::to_string(length) + " at " + std::to_string(offset);
  }
}

void RunRw(Job* job) { DoRw(job, job->op == kRead, job->data, job->length, job->offset); }

double NowMs() {
  struct timespec ts {};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

void RunChain(IoThread* t, Job* job) {
  struct Step {
    bool rd;
    uint8_t* data;
    size_t length;
    int64_t offset;
  };
  const Step steps[3] = {{false, job->data, job->length, job->offset},
                         {true, job->data + job->page, job->len2, job->off2},
                         {false, job->data + 3 * job->page, job->len3, job->off3}};
  for (int i = 0; i < 3; i++) {
    double start;
    {
      std::lock_guard<std::mutex> lk(t->m);
      if (job->cancel) break;
      start = NowMs();
      job->step = i + 1;
      job->stepStart = start;
      job->stepDone = false;
    }
    if ((job->stallSteps & (1 << i)) != 0) Stall(job);
    DoRw(job, steps[i].rd, steps[i].data, steps[i].length, steps[i].offset);
    double end = NowMs();
    {
      std::lock_guard<std::mutex> lk(t->m);
      job->stepDone = true;
    }
    job->lastStep = i + 1;
    if (job->err != 0) break;
    double deadline = i == 0 ? job->deadline1 : start + job->stepTimeoutMs;
    if (end > deadline) {
      job->late = true;
      break;
    }
    if (i == 1) {
      job->match = memcmp(job->data + job->page, job->data + 2 * job->page, job->cmpLen) == 0;
      if (!job->match) break;
    }
  }
}

void Run(IoThread* t, Job* job) {
  if (job->op != kChain) Stall(job);
  switch (job->op) {
    case kChain: RunChain(t, job); break;
    case kOpen: RunOpen(job); break;
    case kSize: RunSize(job); break;
    case kRead:
    case kWrite: RunRw(job); break;
    case kClose:
      // No retry on EINTR: the fd is released either way on Linux.
      if (close(job->fd) < 0 && errno != EINTR) Fail(job, errno, "close");
      break;
    default: job->err = EINVAL; job->message = "unknown op";
  }
}

void* ThreadMain(void* arg) {
  // Owns one reference to the shared state; the JS handle owns the other.
  auto* self = static_cast<std::shared_ptr<IoThread>*>(arg);
  std::shared_ptr<IoThread> t = *self;
  delete self;
  for (;;) {
    Job* job;
    {
      std::unique_lock<std::mutex> lk(t->m);
      t->cv.wait(lk, [&] { return t->job != nullptr || t->stop; });
      if (!t->job) break;
      job = t->job;
    }
    Run(t.get(), job);
    {
      double doneAt = NowMs();
      std::lock_guard<std::mutex> lk(t->m);
      t->job = nullptr;
      t->doneAt = doneAt;
      t->doneId = job->id;
    }
    std::lock_guard<std::mutex> lk(t->envState->m);
    if (!t->envState->alive || t->tsfn.NonBlockingCall(job) != napi_ok) {
      // The environment is going away; nobody waits for this result any more. The reference
      // must not be deleted off the main thread: it goes with the environment.
      delete job;
    }
  }
  std::lock_guard<std::mutex> lk(t->envState->m);
  if (t->envState->alive) t->tsfn.Release();
  return nullptr;
}

void CallJs(Napi::Env env, Napi::Function cb, IoThread*, Job* job) {
  if (env != nullptr && job->dataRef != nullptr) napi_delete_reference(env, job->dataRef);
  if (env != nullptr && cb != nullptr) {
    Napi::Value err = job->err ? Napi::Number::New(env, job->err) : Napi::Number::New(env, 0);
    Napi::Value msg = job->err ? Napi::String::New(env, job->message) : env.Undefined();
    // Raw calls whose failures are ignored: property sets also fail at teardown (see below), and
    // node-addon-api's Set() would turn that failure into a fatal napi_throw.
    napi_value extra = env.Undefined();
    if (job->op == kChain) {
      napi_value o;
      if (napi_create_object(env, &o) == napi_ok) {
        napi_set_named_property(env, o, "size", Napi::Number::New(env, 0));
        napi_set_named_property(env, o, "chainStep", Napi::Number::New(env, job->lastStep));
        napi_set_named_property(env, o, "chainLate", Napi::Boolean::New(env, job->late));
        napi_set_named_property(env, o, "chainMatch", Napi::Boolean::New(env, job->match));
        extra = o;
      }
    } else if (job->op == kOpen || job->op == kSize) {
      napi_value o;
      if (napi_create_object(env, &o) == napi_ok) {
        auto num = [&](const char* k, double v) { napi_set_named_property(env, o, k, Napi::Number::New(env, v)); };
        if (job->op == kOpen) {
          num("fd", static_cast<double>(job->value));
          napi_set_named_property(env, o, "isBlock", Napi::Boolean::New(env, job->isBlock));
          num("logicalSectorSize", static_cast<double>(job->logical));
          num("physicalSectorSize", static_cast<double>(job->physical));
        }
        num("size", static_cast<double>(job->size));
        extra = o;
      }
    }
    // Not cb.Call(): while Node tears the environment down (process exit with an I/O still in
    // flight, e.g. on a hung disk) JS can no longer run, napi_call_function fails, and
    // node-addon-api's failure path (napi_throw) then aborts the process. A result nobody can
    // receive any more is dropped.
    napi_value argv[5] = {Napi::Number::New(env, job->workerId), Napi::Number::New(env, job->id), err, msg, extra};
    napi_value result;
    napi_status st = napi_call_function(env, env.Undefined(), cb, 5, argv, &result);
    bool pending = false;
    // At teardown the call fails with napi_pending_exception (module API 8) and nothing pending.
    if (st != napi_ok && napi_is_exception_pending(env, &pending) == napi_ok && pending) {
      // An exception thrown by onDone itself: surface it as an uncaught exception, as a throw
      // from any other callback would.
      napi_value exc;
      if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
    }
  }
  delete job;
}

struct ThreadHandle {
  std::shared_ptr<IoThread> t;
};

// ioThreadStart(workerId, onDone) -> handle. onDone(workerId, jobId, errno, message, extra).
Napi::Value IoThreadStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsFunction()) {
    Napi::TypeError::New(env, "ioThreadStart(workerId, onDone)").ThrowAsJavaScriptException();
    return env.Null();
  }
  auto t = std::make_shared<IoThread>();
  t->envState = *static_cast<std::shared_ptr<EnvState>*>(info.Data());
  t->workerId = info[0].As<Napi::Number>().DoubleValue();
  t->tsfn = Tsfn::New(env, info[1].As<Napi::Function>(), "sanlock-io", 0, 1, t.get());
  t->tsfn.Unref(env);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  // The thread only makes syscalls; 256 KiB of stack is plenty (the 8 MiB default is virtual
  // memory only, but there is no reason to reserve it per I/O thread).
  pthread_attr_setstacksize(&attr, 256 * 1024);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  // Signals stay with Node's threads.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t tid;
  auto* arg = new std::shared_ptr<IoThread>(t);
  int rc = pthread_create(&tid, &attr, ThreadMain, arg);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    delete arg;
    t->tsfn.Release();
    Napi::Error::New(env, std::string("pthread_create: ") + strerror(rc)).ThrowAsJavaScriptException();
    return env.Null();
  }
  pthread_setname_np(tid, "sanlock-io");
  return Napi::External<ThreadHandle>::New(env, new ThreadHandle{t},
                                           [](Napi::Env, ThreadHandle* h) { delete h; });
}

// ioThreadStop(handle): the thread ends after its current job (never waited for).
Napi::Value IoThreadStop(const Napi::CallbackInfo& info) {
  auto* h = info[0].As<Napi::External<ThreadHandle>>().Data();
  {
    std::lock_guard<std::mutex> lk(h->t->m);
    h->t->stop = true;
  }
  h->t->cv.notify_one();
  return info.Env().Undefined();
}

// ioThreadDoneAt(handle, jobId) -> CLOCK_MONOTONIC ms at which job `jobId` finished on this
// thread, or -1 while it still runs. Lets a deadline that fires while the completion waits in
// the event loop's queue tell a late loop from a late device.
Napi::Value IoThreadDoneAt(const Napi::CallbackInfo& info) {
  auto* h = info[0].As<Napi::External<ThreadHandle>>().Data();
  double id = info[1].As<Napi::Number>().DoubleValue();
  std::lock_guard<std::mutex> lk(h->t->m);
  bool done = h->t->job == nullptr && h->t->doneId == id;
  return Napi::Number::New(info.Env(), done ? h->t->doneAt : -1);
}

// ioChainCheck(handle, jobId, nowMs) -> for the chain job `jobId` at its caller's deadline:
//   0 when it is between steps or finished (its completion is on its way: look again soon),
//   > 0 the ms left until the deadline of the step it is in, or
//   -step when that step is past its deadline: the chain is cancelled (it runs no further step;
//   the step in flight may still complete late).
Napi::Value IoChainCheck(const Napi::CallbackInfo& info) {
  auto* h = info[0].As<Napi::External<ThreadHandle>>().Data();
  double id = info[1].As<Napi::Number>().DoubleValue();
  double now = info[2].As<Napi::Number>().DoubleValue();
  std::lock_guard<std::mutex> lk(h->t->m);
  Job* job = h->t->job;
  if (job == nullptr || job->id != id || job->op != kChain || job->step == 0 || job->stepDone) {
    return Napi::Number::New(info.Env(), 0);
  }
  double deadline = job->step == 1 ? job->deadline1 : job->stepStart + job->stepTimeoutMs;
  if (now < deadline) return Napi::Number::New(info.Env(), deadline - now);
  job->cancel = true;
  return Napi::Number::New(info.Env(), -job->step);
}

// ioGateNew() -> gate; ioGateRelease(gate); ioGateGen(gate) -> number
Napi::Value IoGateNew(const Napi::CallbackInfo& info) {
  return Napi::External<std::shared_ptr<Gate>>::New(info.Env(), new std::shared_ptr<Gate>(std::make_shared<Gate>()),
                                                    [](Napi::Env, std::shared_ptr<Gate>* g) { delete g; });
}

Napi::Value IoGateRelease(const Napi::CallbackInfo& info) {
  Gate& g = **info[0].As<Napi::External<std::shared_ptr<Gate>>>().Data();
  {
    std::lock_guard<std::mutex> lk(g.m);
    g.gen++;
  }
  g.cv.notify_all();
  return info.Env().Undefined();
}

Napi::Value IoGateGen(const Napi::CallbackInfo& info) {
  Gate& g = **info[0].As<Napi::External<std::shared_ptr<Gate>>>().Data();
  std::lock_guard<std::mutex> lk(g.m);
  return Napi::Number::New(info.Env(), g.gen);
}

// Gives `job` to the idle thread of `h` and wakes it; a busy or stopped thread refuses it (the job
// and its buffer reference are freed, a JS error is thrown and Null returned). `what` names the caller.
Napi::Value HandOver(Napi::Env env, ThreadHandle* h, Job* job, const char* what) {
  job->workerId = h->t->workerId;
  {
    std::lock_guard<std::mutex> lk(h->t->m);
    if (h->t->job != nullptr || h->t->stop) {
      if (job->dataRef != nullptr) napi_delete_reference(env, job->dataRef);
      delete job;
      Napi::Error::New(env, std::string(what) + ": thread busy or stopped").ThrowAsJavaScriptException();
      return env.Null();
    }
    h->t->job = job;
  }
  h->t->cv.notify_one();
  return env.Undefined();
}

// ioSubmit(handle, jobId, op, fd, offset, length, buffer|undefined, path|undefined, readOnly,
//          stallMs, gate|undefined, stallGen). The thread must be idle (the caller tracks that).
Napi::Value IoSubmit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 12 || !info[0].IsExternal()) {
    Napi::TypeError::New(env, "ioSubmit: bad arguments").ThrowAsJavaScriptException();
    return env.Null();
  }
  auto* h = info[0].As<Napi::External<ThreadHandle>>().Data();
  auto* job = new Job();
  job->id = info[1].As<Napi::Number>().DoubleValue();
  job->op = info[2].As<Napi::Number>().Int32Value();
  job->fd = info[3].As<Napi::Number>().Int32Value();
  job->offset = info[4].As<Napi::Number>().Int64Value();
  job->length = static_cast<size_t>(info[5].As<Napi::Number>().Int64Value());
  if (info[6].IsBuffer()) {
    auto buf = info[6].As<Napi::Buffer<uint8_t>>();
    if (buf.Length() < job->length || (reinterpret_cast<uintptr_t>(buf.Data()) & 4095) != 0) {
      delete job;
      Napi::RangeError::New(env, "ioSubmit: buffer too small or not page aligned").ThrowAsJavaScriptException();
      return env.Null();
    }
    job->data = buf.Data();
    if (napi_create_reference(env, buf, 1, &job->dataRef) != napi_ok) {
      delete job;
      Napi::Error::New(env, "ioSubmit: napi_create_reference failed").ThrowAsJavaScriptException();
      return env.Null();
    }
  } else if (job->op == kRead || job->op == kWrite) {
    delete job;
    Napi::TypeError::New(env, "ioSubmit: read and write need a buffer").ThrowAsJavaScriptException();
    return env.Null();
  }
  if (info[7].IsString()) job->path = info[7].As<Napi::String>().Utf8Value();
  job->readOnly = info[8].ToBoolean().Value();
  job->stallMs = info[9].As<Napi::Number>().Uint32Value();
  if (info[10].IsExternal()) job->gate = *info[10].As<Napi::External<std::shared_ptr<Gate>>>().Data();
  job->stallGen = info[11].As<Napi::Number>().Uint32Value();
  return HandOver(env, h, job, "ioSubmit");
}

// ioSubmitChain(handle, jobId, fd, buffer, page, off1, len1, off2, len2, cmpLen, off3, len3,
//               deadline1, stepTimeoutMs[, stallMs, gate, stallGen, stallSteps]): a kChain job (see
//   Job), buffer laid out as [0] write 1 data, [page] read, [2 page] bytes to compare, [3 page]
//   write 3 data. The stall arguments are the test hook of ioSubmit, inside the steps of mask stallSteps.
Napi::Value IoSubmitChain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 14 || !info[0].IsExternal() || !info[3].IsBuffer()) {
    Napi::TypeError::New(env, "ioSubmitChain: bad arguments").ThrowAsJavaScriptException();
    return env.Null();
  }
  auto* h = info[0].As<Napi::External<ThreadHandle>>().Data();
  auto buf = info[3].As<Napi::Buffer<uint8_t>>();
  auto num = [&](int i) { return info[i].As<Napi::Number>().Int64Value(); };
  int64_t page = num(4), len1 = num(6), len2 = num(8), cmpLen = num(9), len3 = num(11);
  if (page <= 0 || (page & 4095) != 0 || len1 <= 0 || len2 <= 0 || len3 <= 0 || len1 > page || len2 > page ||
      len3 > page || cmpLen <= 0 || cmpLen > len2 || cmpLen > page ||
      buf.Length() < static_cast<size_t>(4 * page) || (reinterpret_cast<uintptr_t>(buf.Data()) & 4095) != 0) {
    Napi::RangeError::New(env, "ioSubmitChain: bad lengths or buffer").ThrowAsJavaScriptException();
    return env.Null();
  }
  auto* job = new Job();
  job->op = kChain;
  job->id = info[1].As<Napi::Number>().DoubleValue();
  job->fd = info[2].As<Napi::Number>().Int32Value();
  job->data = buf.Data();
  job->page = static_cast<size_t>(page);
  job->offset = num(5);
  job->length = static_cast<size_t>(len1);
  job->off2 = num(7);
  job->len2 = static_cast<size_t>(len2);
  job->cmpLen = static_cast<size_t>(cmpLen);
  job->off3 = num(10);
  job->len3 = static_cast<size_t>(len3);
  job->deadline1 = info[12].As<Napi::Number>().DoubleValue();
  job->stepTimeoutMs = info[13].As<Napi::Number>().DoubleValue();
  if (info.Length() >= 18 && info[15].IsExternal()) {
    job->stallMs = info[14].As<Napi::Number>().Uint32Value();
    job->gate = *info[15].As<Napi::External<std::shared_ptr<Gate>>>().Data();
    job->stallGen = info[16].As<Napi::Number>().Uint32Value();
    job->stallSteps = info[17].As<Napi::Number>().Int32Value();
  }
  if (napi_create_reference(env, buf, 1, &job->dataRef) != napi_ok) {
    delete job;
    Napi::Error::New(env, "ioSubmitChain: napi_create_reference failed").ThrowAsJavaScriptException();
    return env.Null();
  }
  return HandOver(env, h, job, "ioSubmitChain");
}

// ioAlloc(length) -> Buffer of `length` bytes, page aligned, zero filled (fresh mmap).
Napi::Value IoAlloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t len = info[0].As<Napi::Number>().Int64Value();
  if (len <= 0 || len > (int64_t{1} << 31)) {
    Napi::RangeError::New(env, "ioAlloc: bad length").ThrowAsJavaScriptException();
    return env.Null();
  }
  size_t mapped = (static_cast<size_t>(len) + 4095) & ~size_t{4095};
  void* p = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    Napi::Error::New(env, std::string("ioAlloc: mmap: ") + strerror(errno)).ThrowAsJavaScriptException();
    return env.Null();
  }
  return Napi::Buffer<uint8_t>::New(
      env, static_cast<uint8_t*>(p), static_cast<size_t>(len),
      [](Napi::Env, uint8_t* data, size_t* hint) {
        munmap(data, *hint);
        delete hint;
      },
      new size_t(mapped));
}

// ioDiscard(buffer): gives the physical pages of an ioAlloc buffer back to the kernel while
// keeping the mapping (its next use sees zeros). For idle pooled buffers: RSS drops at once,
// without waiting for V8 to collect anything.
Napi::Value IoDiscard(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer()) {
    Napi::TypeError::New(env, "ioDiscard(buffer)").ThrowAsJavaScriptException();
    return env.Null();
  }
  auto buf = info[0].As<Napi::Buffer<uint8_t>>();
  auto addr = reinterpret_cast<uintptr_t>(buf.Data());
  if ((addr & 4095) != 0) {
    Napi::RangeError::New(env, "ioDiscard: not an ioAlloc buffer").ThrowAsJavaScriptException();
    return env.Null();
  }
  // Whole pages inside the buffer only: the tail page is partly outside it.
  size_t len = buf.Length() & ~size_t{4095};
  if (len > 0 && madvise(buf.Data(), len, MADV_DONTNEED) < 0) return Napi::Number::New(env, -errno);
  return Napi::Number::New(env, 0);
}

}  // namespace

void RegisterDirectIo(Napi::Env env, Napi::Object exports) {
  auto* state = new std::shared_ptr<EnvState>(std::make_shared<EnvState>());
  napi_add_env_cleanup_hook(
      env,
      [](void* arg) {
        auto* st = static_cast<std::shared_ptr<EnvState>*>(arg);
        {
          std::lock_guard<std::mutex> lk((*st)->m);
          (*st)->alive = false;
        }
        delete st;
      },
      state);
  exports.Set("ioThreadStart", Napi::Function::New(env, IoThreadStart, "ioThreadStart", state));
  exports.Set("ioThreadStop", Napi::Function::New(env, IoThreadStop));
  exports.Set("ioThreadDoneAt", Napi::Function::New(env, IoThreadDoneAt));
  exports.Set("ioSubmit", Napi::Function::New(env, IoSubmit));
  exports.Set("ioSubmitChain", Napi::Function::New(env, IoSubmitChain));
  exports.Set("ioChainCheck", Napi::Function::New(env, IoChainCheck));
  exports.Set("ioGateNew", Napi::Function::New(env, IoGateNew));
  exports.Set("ioGateRelease", Napi::Function::New(env, IoGateRelease));
  exports.Set("ioGateGen", Napi::Function::New(env, IoGateGen));
  exports.Set("ioAlloc", Napi::Function::New(env, IoAlloc));
  exports.Set("ioDiscard", Napi::Function::New(env, IoDiscard));
  exports.Set("O_DIRECT", Napi::Number::New(env, O_DIRECT));
}
