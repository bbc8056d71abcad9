// Written in C: a signal handler must be async-signal-safe, and Swift code (global initialisers, reference
// counting, allocation) is not.
#define _GNU_SOURCE
#include "signal_pipe.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static int read_end = -1;
static int write_end = -1;
static pthread_mutex_t setup = PTHREAD_MUTEX_INITIALIZER;

static void on_signal(int signal_number) {
    int saved = errno;
    unsigned char byte = (unsigned char)signal_number;
    // Non-blocking: with the pipe full (a flood of signals nobody reads), the signal is dropped, never a hang.
    ssize_t written = write(write_end, &byte, 1);
    (void)written;
    errno = saved;
}

int contingency_signal_pipe(const int *signals, int count) {
    pthread_mutex_lock(&setup);
    if (read_end < 0) {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
            pthread_mutex_unlock(&setup);
            return -1;
        }
        // The read end blocks: the watching thread waits on it.
        int flags = fcntl(fds[0], F_GETFL);
        fcntl(fds[0], F_SETFL, flags & ~O_NONBLOCK);
        read_end = fds[0];
        write_end = fds[1];
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    for (int index = 0; index < count; index++) {
        if (sigaction(signals[index], &action, NULL) != 0) {
            pthread_mutex_unlock(&setup);
            return -1;
        }
    }
    int result = read_end;
    pthread_mutex_unlock(&setup);
    return result;
}
