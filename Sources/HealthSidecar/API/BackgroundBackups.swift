import Foundation
import Synchronization

/// The background backups (`POST /api/backups?wait=false`) a sidecar is taking, one per label at most: a second
/// call with the same label while one waits or runs gets that one's request.
final class BackgroundBackups: Sendable {
    private let running = Mutex([String: String]())

    /// The request id for a backup with `label`: a new one, reserved (`reserved` true: start it, then `finish`),
    /// or the one already under way (false).
    func reserve(label: String?) -> (id: String, reserved: Bool) {
        running.withLock { table in
            if let id = table[label ?? ""] { return (id, false) }
            let id = UUID().uuidString.lowercased()
            table[label ?? ""] = id
            return (id, true)
        }
    }

    func finish(_ id: String) {
        running.withLock { table in table = table.filter { $0.value != id } }
    }
}
