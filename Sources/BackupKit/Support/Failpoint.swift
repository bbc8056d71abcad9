import BackupStorage
import Foundation

/// Named points where a test can freeze the job (`CONTINGENCY_FAILPOINT=<name>` makes the process stop
/// itself with SIGSTOP there), so a `kill -9` lands at an exact step instead of a guessed moment. Compiled in
/// debug builds only (the tests' builds): a release build has no failpoint, whatever its environment says.
public enum Failpoint {
    @inline(__always)
    public static func hit(_ name: String, holding lease: Lease? = nil) {
        #if DEBUG
        guard ProcessInfo.processInfo.environment["CONTINGENCY_FAILPOINT"] == name else { return }
        // A stop in the middle of a lease renewal would keep the store's guard held while stopped.
        if let lease { lease.withRenewalsHeld { _ = raise(SIGSTOP) } } else { raise(SIGSTOP) }
        #endif
    }
}
