import BackupCore
import BackupStorage
import Foundation

/// One complete backup: an archive with its manifest.
public struct BackupEntry: Sendable, Equatable {
    public let name: BackupName
    public let manifest: Manifest
    public var fileName: String { name.fileName }
    public var size: Int64 { manifest.archive.size }
}

/// What a store holds. Only archives with a manifest are backups; an archive without one is an interrupted
/// run and is never listed.
public struct BackupCatalog: Sendable {
    public let storage: any Storage
    public let prefix: String

    public init(storage: any Storage, prefix: String) {
        self.storage = storage
        self.prefix = prefix
    }

    /// Complete backups, newest first.
    public func list() throws -> [BackupEntry] {
        let objects = try storage.list(folder: "")
        let names = Set(objects.map(\.name))
        return try objects.compactMap { object -> BackupEntry? in
            guard let name = BackupName.parse(fileName: object.name, prefix: prefix),
                names.contains(name.manifestName),
                let manifest = try manifest(for: name)
            else { return nil }
            return BackupEntry(name: name, manifest: manifest)
        }
        .sorted { $0.name > $1.name }
    }

    /// The manifest of `name`, or nil when it has none (or an unreadable one, which does not count).
    public func manifest(for name: BackupName) throws -> Manifest? {
        guard let object = try storage.read(key: name.manifestName) else { return nil }
        return try? ContingencyJSON.decoder().decode(Manifest.self, from: Data(object.data))
    }

    /// True when an archive or a manifest already uses this name.
    public func isTaken(_ name: BackupName) throws -> Bool {
        let objects = try storage.list(folder: "")
        return objects.contains { $0.name == name.fileName || $0.name == name.manifestName }
    }
}
