import BackupCore
import BackupStorage
import Foundation
import Logging

/// One complete backup: an archive with its manifest, and the store it was found in.
public struct BackupEntry: Sendable, Equatable {
    public let name: BackupName
    /// For a genuine backup, what its signature covers (see `ManifestAuthenticator.authenticate`).
    public let manifest: Manifest
    public let storage: any Storage
    /// Whether its manifest is signed by one of the verify keys (`.notChecked` without any).
    public var authenticity: Authenticity = .notChecked
    public var fileName: String { name.fileName }
    public var size: Int64 { manifest.archive.size }

    public static func == (lhs: BackupEntry, rhs: BackupEntry) -> Bool {
        lhs.name == rhs.name && lhs.manifest == rhs.manifest && lhs.storage.description == rhs.storage.description
            && lhs.authenticity == rhs.authenticity
    }
}

/// What the stores hold. Only archives with a manifest are backups; an archive without one is an interrupted
/// run and is never listed. With several stores (a volume and its bucket copy), a backup in both is listed
/// once, from the first store that has it; a copy store that cannot be read is skipped with a warning, so an
/// unreachable bucket never stands between a restore and the volume's backups. With verify keys, every entry
/// says whether it is genuine; backups that are not are still listed (as such), so that they can be seen, but
/// a copy that is not genuine never hides a genuine one in a later store.
public struct BackupCatalog: Sendable {
    public let storages: [any Storage]
    public let prefix: String
    public let logger: Logger?
    public let authenticator: ManifestAuthenticator

    public init(storage: any Storage, prefix: String) {
        self.init(storages: [storage], prefix: prefix)
    }

    public init(
        storages: [any Storage], prefix: String, logger: Logger? = nil, authenticator: ManifestAuthenticator = .init(keys: [])
    ) {
        self.storages = storages
        self.prefix = prefix
        self.logger = logger
        self.authenticator = authenticator
    }

    /// Complete backups, newest first (by the time in their names, which `NewestBackup` does not trust).
    public func list() throws -> [BackupEntry] {
        var seen = Set<String>()
        var entries: [BackupEntry] = []
        for (index, storage) in storages.enumerated() {
            do {
                var found: [BackupEntry] = []
                let objects = try storage.list(folder: "")
                let sizes = Dictionary(objects.map { ($0.name, $0.size) }) { first, _ in first }
                for name in completeNames(among: objects) where !seen.contains(name.fileName) {
                    if let size = sizes[name.manifestName], size > Self.manifestLimit {
                        logger?.warning("\(name.fileName) is not listed: \(Self.tooLarge(name.manifestName, storage).message)")
                        continue
                    }
                    guard let read = try Self.manifest(for: name, in: storage) else { continue }
                    let (authenticity, manifest) = authenticator.authenticate(read, fileName: name.fileName)
                    found.append(BackupEntry(name: name, manifest: manifest, storage: storage, authenticity: authenticity))
                }
                // A copy that is not genuine does not hide a genuine one in a later store (as deleting it would
                // not): the bucket's copy is there for the day the volume cannot be trusted.
                for entry in found {
                    guard let index = entries.firstIndex(where: { $0.fileName == entry.fileName }) else {
                        entries.append(entry)
                        continue
                    }
                    // Only names whose copy so far is not trusted are looked for again.
                    guard entry.authenticity.isTrusted else { continue }
                    let hidden = entries[index]
                    logger?.warning(
                        "\(entry.fileName) in \(hidden.storage) is \(hidden.authenticity); its genuine copy in \(storage) is taken")
                    entries[index] = entry
                }
                seen.formUnion(found.filter(\.authenticity.isTrusted).map(\.fileName))
            } catch let error as ContingencyError where index > 0 && !error.isCancellation {
                logger?.warning("Backups in \(storage) are not listed: \(error)")
            }
        }
        return entries.sorted { $0.name > $1.name }
    }

    /// The names of archives that have a manifest beside them in `storage`, newest first; manifests not read.
    public func completeNames(in storage: any Storage) throws -> [BackupName] {
        completeNames(among: try storage.list(folder: ""))
    }

    private func completeNames(among objects: [ObjectInfo]) -> [BackupName] {
        let names = Set(objects.map(\.name))
        return objects.compactMap { object in
            guard let name = BackupName.parse(fileName: object.name, prefix: prefix), names.contains(name.manifestName) else {
                return nil
            }
            return name
        }
        .sorted { $0 > $1 }
    }

    /// The most a manifest may hold: it is read whole into memory and parsed.
    public static let manifestLimit: Int64 = 16 << 20

    /// The manifest of `name` in `storage`, or nil when it has none (or an unreadable one, which does not count).
    /// One larger than `manifestLimit` is an error, and is not read.
    public static func manifest(for name: BackupName, in storage: any Storage) throws -> Manifest? {
        try manifest(key: name.manifestName, in: storage)
    }

    /// The manifest stored under `key` (see `manifest(for:in:)`).
    public static func manifest(key: String, in storage: any Storage) throws -> Manifest? {
        guard let reader = try storage.openReader(key: key) else { return nil }
        guard reader.size <= manifestLimit else { throw tooLarge(key, storage) }
        var data = [UInt8](repeating: 0, count: Int(reader.size) + 1)
        var count = 0
        try data.withUnsafeMutableBytes { raw in
            while count < raw.count {
                let n = try reader.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[count...]))
                if n == 0 { break }
                count += n
            }
        }
        // An object that grew after it was opened is no better.
        guard count <= reader.size else { throw tooLarge(key, storage) }
        return try? ContingencyJSON.decoder().decode(Manifest.self, from: Data(data[0..<count]))
    }

    private static func tooLarge(_ key: String, _ storage: any Storage) -> ContingencyError {
        .failed(
            "the manifest \(key) in \(storage) is larger than \(manifestLimit >> 20) MiB, more than any backup writes: not read",
            hint: "remove it or restore another backup (LATEST_BACKUP=…)")
    }

    /// True when an archive or a manifest already uses this name in the first store.
    public func isTaken(_ name: BackupName) throws -> Bool {
        guard let storage = storages.first else { return false }
        let objects = try storage.list(folder: "")
        return objects.contains { $0.name == name.fileName || $0.name == name.manifestName }
    }
}
