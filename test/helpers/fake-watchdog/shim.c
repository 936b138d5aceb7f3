/*
 * Fake watchdog device for tests, loaded with LD_PRELOAD into the real wdmd (or into a node
 * process running our device-mode watchdog). It never touches a real watchdog: every path that
 * starts with /dev/watchdog is refused, and the one fake path (FAKE_WD_DEV) is served from
 * /dev/null with the watchdog ioctls emulated. What happens to it is appended to FAKE_WD_LOG,
 * one event a line: "<CLOCK_MONOTONIC seconds.ms> <pid> <event> [arg]", events
 *   open | settimeout N | gettimeout N | keepalive | write N | magic | close clean |
 *   close unclean | fired
 * "fired" is written by a checker thread when the device is armed and nothing pinged it for the
 * fire timeout (FAKE_WD_FIRE_SECONDS when set, to keep tests short, else the timeout last set).
 *
 * It also lets wdmd run unprivileged in a sandbox:
 *   FAKE_WD_RUN_DIR   replaces the /run/wdmd (or /var/run/wdmd) prefix of every path wdmd uses
 *                     (pid lockfile, socket), so several instances can run side by side;
 *   FAKE_WD_SHM       replaces the POSIX shm name "/wdmd" that wdmd uses to detect an unclean
 *                     previous exit (the name is machine-wide otherwise);
 *   mlockall, setrlimit, sched_setscheduler and setpriority succeed without doing anything.
 *   FAKE_WD_INITIAL_TIMEOUT  what WDIOC_GETTIMEOUT reports before any SETTIMEOUT (default 30).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/watchdog.h>
#include <sys/sysmacros.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 16

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int dev_fds[MAX_FDS];
static int n_dev_fds;
/* Device state: shared by all fds, as a real watchdog's is. */
static int armed;
static int fired;
static int expect_close;
static int timeout_s = -1;
static double last_ping;
static int checker_started;

static const char *env(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Appends one event line; raw syscalls so our own wrappers never see the log file. */
static void log_event(const char *fmt, ...) {
  const char *path = env("FAKE_WD_LOG");
  if (!path) return;
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  char line[320];
  int n = snprintf(line, sizeof line, "%.3f %d %s\n", now_s(), (int)getpid(), msg);
  int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  if (syscall(SYS_write, fd, line, (size_t)n) < 0) { /* nothing to do in a test shim */ }
  syscall(SYS_close, fd);
}

static int initial_timeout(void) {
  const char *v = env("FAKE_WD_INITIAL_TIMEOUT");
  return v ? atoi(v) : 30;
}

static int fire_seconds(void) {
  const char *v = env("FAKE_WD_FIRE_SECONDS");
  return v ? atoi(v) : timeout_s;
}

static void *checker(void *arg) {
  (void)arg;
  for (;;) {
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    pthread_mutex_lock(&mu);
    if (armed && !fired && now_s() >= last_ping + fire_seconds()) {
      fired = 1;
      log_event("fired");
    }
    pthread_mutex_unlock(&mu);
  }
  return NULL;
}

static int is_dev_fd(int fd) {
  for (int i = 0; i < n_dev_fds; i++)
    if (dev_fds[i] == fd) return 1;
  return 0;
}

static void drop_dev_fd(int fd) {
  for (int i = 0; i < n_dev_fds; i++)
    if (dev_fds[i] == fd) {
      dev_fds[i] = dev_fds[--n_dev_fds];
      return;
    }
}

static int is_fake_dev(const char *path) {
  const char *dev = env("FAKE_WD_DEV");
  return path && dev && strcmp(path, dev) == 0;
}

static int is_real_watchdog(const char *path) {
  return path && strncmp(path, "/dev/watchdog", 13) == 0;
}

/* Returns path, or buf holding it with the wdmd run dir prefix replaced. */
static const char *map_path(const char *path, char *buf, size_t len) {
  const char *dir = env("FAKE_WD_RUN_DIR");
  if (!dir || !path) return path;
  static const char *prefixes[] = {"/var/run/wdmd", "/run/wdmd"};
  for (size_t i = 0; i < 2; i++) {
    size_t pl = strlen(prefixes[i]);
    if (strncmp(path, prefixes[i], pl) == 0 && (path[pl] == '\0' || path[pl] == '/')) {
      snprintf(buf, len, "%s%s", dir, path + pl);
      return buf;
    }
  }
  return path;
}

#define REAL(ret, name, ...)                                   \
  static ret (*real_##name)(__VA_ARGS__);                      \
  if (!real_##name) real_##name = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name)

static int open_fake_dev(void) {
  int fd = (int)syscall(SYS_openat, AT_FDCWD, "/dev/null", O_WRONLY | O_CLOEXEC, 0);
  if (fd < 0) return fd;
  pthread_mutex_lock(&mu);
  if (n_dev_fds < MAX_FDS) dev_fds[n_dev_fds++] = fd;
  if (timeout_s < 0) timeout_s = initial_timeout();
  /* Opening a watchdog starts it. */
  armed = 1;
  fired = 0;
  expect_close = 0;
  last_ping = now_s();
  if (!checker_started) {
    pthread_t t;
    if (pthread_create(&t, NULL, checker, NULL) == 0) {
      pthread_detach(t);
      checker_started = 1;
    }
  }
  log_event("open");
  pthread_mutex_unlock(&mu);
  return fd;
}

static int do_open(int dirfd, const char *path, int flags, mode_t mode, int at) {
  if (is_fake_dev(path)) return open_fake_dev();
  if (is_real_watchdog(path)) {
    errno = ENOENT;
    return -1;
  }
  char buf[PATH_MAX];
  const char *p = map_path(path, buf, sizeof buf);
  return (int)syscall(SYS_openat, at ? dirfd : AT_FDCWD, p, flags, mode);
}

static mode_t mode_arg(int flags, va_list ap) {
  return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t m = mode_arg(flags, ap);
  va_end(ap);
  return do_open(AT_FDCWD, path, flags, m, 0);
}
int open64(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t m = mode_arg(flags, ap);
  va_end(ap);
  return do_open(AT_FDCWD, path, flags, m, 0);
}
int __open_2(const char *path, int flags) { return do_open(AT_FDCWD, path, flags, 0, 0); }
int __open64_2(const char *path, int flags) { return do_open(AT_FDCWD, path, flags, 0, 0); }
int openat(int dirfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t m = mode_arg(flags, ap);
  va_end(ap);
  return do_open(dirfd, path, flags, m, 1);
}
int openat64(int dirfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t m = mode_arg(flags, ap);
  va_end(ap);
  return do_open(dirfd, path, flags, m, 1);
}

static void fake_stat(struct stat *st) {
  memset(st, 0, sizeof *st);
  st->st_mode = S_IFCHR | 0600;
  st->st_rdev = makedev(10, 130);
  st->st_nlink = 1;
}

int stat(const char *path, struct stat *st) {
  if (is_fake_dev(path)) {
    fake_stat(st);
    return 0;
  }
  if (is_real_watchdog(path)) {
    errno = ENOENT;
    return -1;
  }
  char buf[PATH_MAX];
  REAL(int, stat, const char *, struct stat *);
  return real_stat(map_path(path, buf, sizeof buf), st);
}
int stat64(const char *path, struct stat64 *st) { return stat(path, (struct stat *)st); }
int lstat(const char *path, struct stat *st) { return stat(path, st); }

int mkdir(const char *path, mode_t mode) {
  char buf[PATH_MAX];
  return (int)syscall(SYS_mkdirat, AT_FDCWD, map_path(path, buf, sizeof buf), mode);
}
int unlink(const char *path) {
  char buf[PATH_MAX];
  return (int)syscall(SYS_unlinkat, AT_FDCWD, map_path(path, buf, sizeof buf), 0);
}
int chmod(const char *path, mode_t mode) {
  char buf[PATH_MAX];
  return (int)syscall(SYS_fchmodat, AT_FDCWD, map_path(path, buf, sizeof buf), mode);
}
int chown(const char *path, uid_t uid, gid_t gid) {
  char buf[PATH_MAX];
  return (int)syscall(SYS_fchownat, AT_FDCWD, map_path(path, buf, sizeof buf), uid, gid, 0);
}

static const struct sockaddr *map_addr(const struct sockaddr *a, socklen_t *len, struct sockaddr_un *out) {
  if (!a || a->sa_family != AF_UNIX) return a;
  const struct sockaddr_un *u = (const struct sockaddr_un *)a;
  char buf[PATH_MAX];
  const char *p = map_path(u->sun_path, buf, sizeof buf);
  if (p == u->sun_path) return a;
  memset(out, 0, sizeof *out);
  out->sun_family = AF_UNIX;
  snprintf(out->sun_path, sizeof out->sun_path, "%s", p);
  *len = sizeof *out;
  return (const struct sockaddr *)out;
}
int bind(int fd, const struct sockaddr *a, socklen_t len) {
  struct sockaddr_un u;
  const struct sockaddr *m = map_addr(a, &len, &u);
  return (int)syscall(SYS_bind, fd, m, len);
}
int connect(int fd, const struct sockaddr *a, socklen_t len) {
  struct sockaddr_un u;
  const struct sockaddr *m = map_addr(a, &len, &u);
  REAL(int, connect, int, const struct sockaddr *, socklen_t);
  return real_connect(fd, m, len);
}

int ioctl(int fd, unsigned long req, ...) {
  va_list ap;
  va_start(ap, req);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  pthread_mutex_lock(&mu);
  if (!is_dev_fd(fd)) {
    pthread_mutex_unlock(&mu);
    return (int)syscall(SYS_ioctl, fd, req, arg);
  }
  int rv = 0;
  int *iarg = (int *)arg;
  switch (req) {
  case WDIOC_GETTIMEOUT:
    *iarg = timeout_s;
    log_event("gettimeout %d", timeout_s);
    break;
  case WDIOC_SETTIMEOUT:
    if (*iarg <= 0) {
      errno = EINVAL;
      rv = -1;
      break;
    }
    timeout_s = *iarg;
    /* Setting the timeout pings, as the kernel's watchdog core does. */
    last_ping = now_s();
    log_event("settimeout %d", timeout_s);
    break;
  case WDIOC_KEEPALIVE:
    last_ping = now_s();
    log_event("keepalive");
    break;
  case WDIOC_GETSUPPORT:
    memset(arg, 0, sizeof(struct watchdog_info));
    ((struct watchdog_info *)arg)->options = WDIOF_SETTIMEOUT | WDIOF_KEEPALIVEPING | WDIOF_MAGICCLOSE;
    snprintf((char *)((struct watchdog_info *)arg)->identity, 32, "fake-watchdog");
    break;
  case WDIOC_GETSTATUS:
  case WDIOC_GETBOOTSTATUS:
    *iarg = 0;
    break;
  case WDIOC_GETTIMELEFT:
    *iarg = (int)(last_ping + timeout_s - now_s());
    break;
  default:
    errno = ENOTTY;
    rv = -1;
  }
  pthread_mutex_unlock(&mu);
  return rv;
}

/* Any write pings; a 'V' anywhere in it allows the next close to stop the watchdog. */
static void dev_write(const void *buf, size_t n) {
  int magic = memchr(buf, 'V', n) != NULL;
  last_ping = now_s();
  if (magic) {
    expect_close = 1;
    log_event("magic");
  } else {
    log_event("write %zu", n);
  }
}

ssize_t write(int fd, const void *buf, size_t n) {
  pthread_mutex_lock(&mu);
  if (is_dev_fd(fd)) {
    dev_write(buf, n);
    pthread_mutex_unlock(&mu);
    return (ssize_t)n;
  }
  pthread_mutex_unlock(&mu);
  return syscall(SYS_write, fd, buf, n);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
  pthread_mutex_lock(&mu);
  if (is_dev_fd(fd)) {
    ssize_t total = 0;
    for (int i = 0; i < cnt; i++) {
      dev_write(iov[i].iov_base, iov[i].iov_len);
      total += (ssize_t)iov[i].iov_len;
    }
    pthread_mutex_unlock(&mu);
    return total;
  }
  pthread_mutex_unlock(&mu);
  return syscall(SYS_writev, fd, iov, cnt);
}

int close(int fd) {
  pthread_mutex_lock(&mu);
  if (is_dev_fd(fd)) {
    drop_dev_fd(fd);
    if (expect_close) {
      armed = 0;
      log_event("close clean");
    } else {
      /* Like the kernel without magic close: the timer keeps running. */
      log_event("close unclean");
    }
    expect_close = 0;
  }
  pthread_mutex_unlock(&mu);
  return (int)syscall(SYS_close, fd);
}

int shm_open(const char *name, int flags, mode_t mode) {
  const char *alt = env("FAKE_WD_SHM");
  if (alt && strcmp(name, "/wdmd") == 0) name = alt;
  REAL(int, shm_open, const char *, int, mode_t);
  return real_shm_open(name, flags, mode);
}
int shm_unlink(const char *name) {
  const char *alt = env("FAKE_WD_SHM");
  if (alt && strcmp(name, "/wdmd") == 0) name = alt;
  REAL(int, shm_unlink, const char *);
  return real_shm_unlink(name);
}

int mlockall(int flags) {
  (void)flags;
  return 0;
}
int setrlimit(__rlimit_resource_t r, const struct rlimit *l) {
  (void)r;
  (void)l;
  return 0;
}
int setrlimit64(__rlimit_resource_t r, const struct rlimit64 *l) {
  (void)r;
  (void)l;
  return 0;
}
int sched_setscheduler(pid_t pid, int policy, const struct sched_param *p) {
  (void)pid;
  (void)policy;
  (void)p;
  return 0;
}
int setpriority(__priority_which_t which, id_t who, int prio) {
  (void)which;
  (void)who;
  (void)prio;
  return 0;
}
