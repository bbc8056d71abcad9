import BackupCore
import BackupStorage
import Foundation

/// `.contingency/state/rollbacks.json`, changed only by compare-and-swap: two runners working on two requests
/// at once cannot both pass the loop guard.
struct RollbackHistoryStore: Sendable {
    let storage: any Storage

    func read() throws -> (history: RollbackHistory, etag: String?) {
        guard let object = try storage.read(key: RollbackHistory.key) else { return (RollbackHistory(), nil) }
        // A month of rollbacks is a few KiB: a larger file is not a history this product wrote.
        guard object.data.count <= 4 << 20 else {
            throw ContingencyError.failed(
                "the rollback history \(storage)/\(RollbackHistory.key) is \(object.data.count) bytes, over 4 MiB",
                hint: "look at it, then delete it: the loop guard starts again from an empty history")
        }
        do {
            return (try ContingencyJSON.decoder().decode(RollbackHistory.self, from: Data(object.data)), object.etag)
        } catch {
            throw ContingencyError.failed(
                "the rollback history \(storage)/\(RollbackHistory.key) is not readable (\(error))",
                hint: "look at it, then delete it: the loop guard starts again from an empty history")
        }
    }

    /// Applies `change` atomically; `change` returns false to leave the history as it is (and the call
    /// returns false).
    @discardableResult
    func update(_ change: (inout RollbackHistory) throws -> Bool) throws -> Bool {
        while true {
            let (current, etag) = try read()
            var next = current
            guard try change(&next) else { return false }
            next.prune(before: Date().addingTimeInterval(-RollbackHistory.kept))
            let data = Array(try ContingencyJSON.encoder().encode(next))
            if let etag {
                if try storage.replace(key: RollbackHistory.key, data: data, ifMatch: etag) != nil { return true }
            } else if try storage.create(key: RollbackHistory.key, data: data) != nil {
                return true
            }
            if try storage.read(key: RollbackHistory.key)?.data == data { return true }
        }
    }
}
