#ifndef CONTINGENCY_SIGNAL_PIPE_H
#define CONTINGENCY_SIGNAL_PIPE_H

/// Installs, for each of `signals`, a handler that writes the signal's number (one byte) to a pipe, and returns
/// the pipe's read end (close-on-exec), or -1 with errno set. Once per process: a later call returns the same
/// read end. The handler only calls write(2), which is async-signal-safe, so it works whichever thread the
/// kernel delivers the signal to; children get the default action back when they exec.
int contingency_signal_pipe(const int *signals, int count);

#endif
