import BackupCore
import BackupStorage
import Foundation

/// The sidecars' heartbeats in a store (`.contingency/state/health/<sidecar>.json`): read by the probe loop
/// (for an incident's id), by every backup (the app's health as it begins) and by the rollback's plan.
public struct HeartbeatStore: Sendable {
    public let storage: any Storage

    public init(storage: any Storage) { self.storage = storage }

    /// Every readable heartbeat; unreadable (half-written by an old version, hand-edited) or oversized ones are
    /// skipped, and a folder that cannot be listed gives none: a heartbeat is advice, not a command.
    /// Blocking: call through `Blocking.run` from async code.
    public func all() -> [HealthHeartbeat] {
        guard let objects = try? storage.list(folder: HealthHeartbeat.folder) else { return [] }
        return objects.filter { $0.name.hasSuffix(".json") && $0.size <= 64 * 1024 }.compactMap { object in
            guard let read = try? storage.read(key: object.key) else { return nil }
            return try? ContingencyJSON.decoder().decode(HealthHeartbeat.self, from: Data(read.data))
        }
    }

    /// Writes `heartbeat` under its sidecar's key.
    public func write(_ heartbeat: HealthHeartbeat) throws {
        try storage.put(key: HealthHeartbeat.key(for: heartbeat.sidecar), data: Array(try ContingencyJSON.encoder().encode(heartbeat)))
    }

    /// The newest healthy probe any sidecar recorded.
    public func lastHealthy() -> Date? { all().compactMap(\.lastHealthy).max() }
}
