// contingency-guard: runs one program as its child and makes sure it ends with the job that started it.
//
//     contingency-guard <job pid> <program> [arguments...]
//
// The jobs start every child process (pg_dump, pg_dumpall, pg_restore, hooks) through it, because nothing
// else ends a child when its job is killed with SIGKILL: PR_SET_PDEATHSIG fires when the *thread* that
// spawned the child exits (a pool thread may exit long before the job, killing a healthy child), and
// posix_spawn, which the jobs use, cannot set it between fork and exec anyway. The guard is single-threaded,
// so in its own child the flag means what it says. It then watches the job as a whole:
//
// - the job: through a pidfd (readable once every thread of the job has exited, whichever one spawned the
//   guard), else by checking getppid() every second (kernels before 5.3, or a seccomp profile refusing
//   pidfd_open). When the job is gone the program is killed with SIGKILL, with its whole process group: the
//   program leads a group of its own (pg_restore --jobs forks workers, which must go too), unless the guard
//   leads one already (the job made one for a hook, so that a timeout reaches the group), which is then
//   killed whole.
// - the program: PR_SET_PDEATHSIG=SIGKILL towards the guard, set between fork and exec and re-checked with
//   getppid(), so a guard killed with SIGKILL (the end of a teardown) takes the program with it.
// - signals sent to the guard (SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2) are passed to the program.
//
// It exits as the program did: the same exit status, or killed by the same signal; 125 when the guard itself
// could not start the program (its job already gone, a bad call), 126 or 127 when exec failed (as a shell).
// It holds none of the job's pipes once the program runs (its own standard streams become /dev/null), so
// the program's output ends exactly when the program's does. No shell is involved: arguments and the
// environment (where the secrets are) reach the program untouched.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

static void fail(const char *what) {
    fprintf(stderr, "contingency-guard: %s: %s\n", what, strerror(errno));
    exit(125);
}

// Ends the guard the way the program ended, so the job sees the program's own status.
static void exit_like(int status) {
    if (WIFEXITED(status)) exit(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) {
        int signal_number = WTERMSIG(status);
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);  // the program may have dumped core; the guard has nothing to add
        signal(signal_number, SIG_DFL);
        sigset_t only;
        sigemptyset(&only);
        sigaddset(&only, signal_number);
        sigprocmask(SIG_UNBLOCK, &only, NULL);
        raise(signal_number);
        exit(128 + signal_number);  // a signal whose default is to be ignored
    }
    exit(125);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: contingency-guard <job pid> <program> [arguments...]\n");
        return 125;
    }
    char *end = NULL;
    long job = strtol(argv[1], &end, 10);
    if (end == argv[1] || *end != '\0' || job < 1) {  // 1 too: in a container, the job is often init
        fprintf(stderr, "contingency-guard: %s is not a job's process id\n", argv[1]);
        return 125;
    }
    // A standard stream the job left closed is opened on /dev/null first: otherwise the pidfd or the signalfd
    // would take its number, and be replaced by /dev/null below (a pidfd that always reads "the job is gone").
    for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++) {
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
            int opened = open("/dev/null", O_RDWR);
            if (opened != fd) {
                fprintf(stderr, "contingency-guard: cannot open /dev/null for descriptor %d\n", fd);
                return 125;
            }
        }
    }
    // Opened before the check below: if the job is our parent after the pidfd exists, the pidfd is the job's.
    int job_fd = (int)syscall(SYS_pidfd_open, (pid_t)job, 0);
    if (getppid() != (pid_t)job) {
        fprintf(stderr, "contingency-guard: the job (pid %ld) is gone; not starting %s\n", job, argv[2]);
        return 125;
    }

    // An ignored SIGCHLD is inherited across exec and would have the kernel reap the program unseen: the guard
    // would then wait for it forever. The program gets the job's disposition back before its exec.
    struct sigaction child_action, original_child_action;
    memset(&child_action, 0, sizeof child_action);
    child_action.sa_handler = SIG_DFL;
    if (sigaction(SIGCHLD, &child_action, &original_child_action) != 0) fail("sigaction");

    sigset_t watched, original;
    sigemptyset(&watched);
    sigaddset(&watched, SIGCHLD);
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) sigaddset(&watched, forwarded[i]);
    if (sigprocmask(SIG_BLOCK, &watched, &original) != 0) fail("sigprocmask");
    int signal_fd = signalfd(-1, &watched, SFD_CLOEXEC);
    if (signal_fd < 0) fail("signalfd");

    pid_t guard = getpid();
    int leads_group = getpgrp() == guard;
    pid_t child = fork();
    if (child < 0) fail("fork");
    if (child == 0) {
        if (!leads_group) setpgid(0, 0);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != guard) _exit(125);
        sigaction(SIGCHLD, &original_child_action, NULL);
        sigprocmask(SIG_SETMASK, &original, NULL);
        execvp(argv[2], argv + 2);
        int error = errno;
        fprintf(stderr, "contingency-guard: cannot run %s: %s\n", argv[2], strerror(error));
        _exit(error == ENOENT ? 127 : 126);
    }

    if (!leads_group) setpgid(child, child);  // as the child does: whichever runs first, the group exists
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd >= 0) {
        dup2(null_fd, STDIN_FILENO);
        dup2(null_fd, STDOUT_FILENO);
        dup2(null_fd, STDERR_FILENO);
        if (null_fd > STDERR_FILENO) close(null_fd);
    }

    for (;;) {
        struct pollfd watches[2] = {{.fd = signal_fd, .events = POLLIN}, {.fd = job_fd, .events = POLLIN}};
        int ready = poll(watches, job_fd >= 0 ? 2 : 1, job_fd >= 0 ? -1 : 1000);
        if (ready < 0 && errno != EINTR) {
            // Nothing left to watch with: do not leave the program unguarded.
            kill(child, SIGKILL);
            int status;
            while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
            exit_like(status);
        }
        if ((job_fd >= 0 && (watches[1].revents & (POLLIN | POLLHUP | POLLERR))) || getppid() != (pid_t)job) {
            kill(child, SIGKILL);
            kill(leads_group ? -guard : -child, SIGKILL);  // the guard's group includes the guard: it ends here
            int status;
            while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
            return 128 + SIGKILL;
        }
        if (!(watches[0].revents & POLLIN)) continue;
        struct signalfd_siginfo info;
        if (read(signal_fd, &info, sizeof info) != (ssize_t)sizeof info) continue;
        if (info.ssi_signo != SIGCHLD) {
            kill(child, (int)info.ssi_signo);
            continue;
        }
        int status;
        pid_t reaped = waitpid(child, &status, WNOHANG);
        if (reaped == child) exit_like(status);
    }
}
