import BackupCore
import BackupStorage
import Foundation
import Logging

/// What every store holds under one prefix, read once: for each backup name, which stores hold its archive and
/// its manifest, the manifest itself (from the first store holding a complete copy) and the pins. Used by
/// deletion, pins and cleanup, under the store's lease.
struct BackupInventory {
    /// One backup name and where its pieces are.
    struct Item {
        let name: BackupName
        /// Stores holding the archive, and the manifest, by store description.
        var archiveIn: [any Storage] = []
        var manifestIn: [any Storage] = []
        /// The manifest of a complete copy (archive and manifest in one store), nil if none was readable.
        var manifest: Manifest?
        var authenticity: Authenticity = .notChecked
        /// The store of that complete copy.
        var completeIn: (any Storage)?

        var isComplete: Bool { manifest != nil }

        func holds(_ store: any Storage, in list: [any Storage]) -> Bool {
            list.contains { $0.description == store.description }
        }

        /// Stores where both the archive and the manifest are.
        var completeStores: [any Storage] { archiveIn.filter { holds($0, in: manifestIn) } }

        /// Verified by a drill or a check, and trusted: what KEEP_MIN and "the only remaining verified" count.
        var isGoodBackup: Bool {
            guard let manifest, authenticity.isTrusted, manifest.verified?.ok == true else { return false }
            return manifest.metadata.kind != .safety
        }
    }

    let items: [Item]
    /// Pinned backups' file names, with their pin records.
    let pins: [String: BackupPin]
    /// Copy stores that could not be listed (`tolerant` reads only): nothing in them was seen or is touched.
    var unreachable: [String] = []

    func item(_ fileName: String) -> Item? { items.first { $0.name.fileName == fileName } }

    /// Reads every store. With `tolerant`, a copy store (not the first) that cannot be listed is skipped with a
    /// warning and named in `unreachable`, so that an unreachable bucket never stops retention on the volume.
    static func read(
        stores: [any Storage], prefix: String, authenticator: ManifestAuthenticator, logger: Logger,
        tolerant: Bool = false
    ) throws -> BackupInventory {
        var byName: [String: Item] = [:]
        var unreachable: [String] = []
        for (index, storage) in stores.enumerated() {
            let objects: [ObjectInfo]
            do {
                objects = try storage.list(folder: "")
            } catch let error as ContingencyError where tolerant && index > 0 && !error.isCancellation {
                logger.warning("\(storage) is skipped, nothing in it is deleted this time: \(error)")
                unreachable.append(storage.description)
                continue
            }
            let names = Set(objects.map(\.name))
            for object in objects {
                if let name = BackupName.parse(fileName: object.name, prefix: prefix), name.fileName == object.name {
                    byName[name.fileName, default: Item(name: name)].archiveIn.append(storage)
                } else if object.name.hasSuffix(".json"),
                    let name = BackupName.parse(fileName: String(object.name.dropLast(5)), prefix: prefix),
                    name.manifestName == object.name
                {
                    byName[name.fileName, default: Item(name: name)].manifestIn.append(storage)
                    guard names.contains(name.fileName),
                        byName[name.fileName]?.manifest == nil || byName[name.fileName]?.authenticity.isTrusted == false
                    else { continue }
                    do {
                        guard let read = try BackupCatalog.manifest(for: name, in: storage) else {
                            logger.warning(
                                "The manifest \(name.manifestName) in \(storage) is not readable: the backup is not counted there"
                            )
                            continue
                        }
                        let (authenticity, manifest) = authenticator.authenticate(read, fileName: name.fileName)
                        if byName[name.fileName]?.manifest == nil || authenticity.isTrusted {
                            byName[name.fileName]?.manifest = manifest
                            byName[name.fileName]?.authenticity = authenticity
                            byName[name.fileName]?.completeIn = storage
                        }
                    } catch let error as ContingencyError where !error.isCancellation {
                        logger.warning("\(name.fileName) in \(storage): \(error)")
                    }
                }
            }
        }
        var pins: [String: BackupPin] = [:]
        if let primary = stores.first {
            for object in try primary.list(folder: BackupPin.folder) {
                guard let fileName = BackupPin.fileName(ofPinObject: object.name, prefix: prefix) else { continue }
                guard let stored = try primary.read(key: object.key),
                    let pin = try? ContingencyJSON.decoder().decode(BackupPin.self, from: Data(stored.data))
                else {
                    // An unreadable pin still pins: keeping a backup is the safe side.
                    pins[fileName] = BackupPin(
                        fileName: fileName, pinnedBy: "unknown (unreadable pin)", pinnedAt: object.modified)
                    continue
                }
                pins[fileName] = pin
            }
        }
        return BackupInventory(items: byName.values.sorted { $0.name > $1.name }, pins: pins, unreachable: unreachable)
    }

    /// Removes one backup from every store holding a piece of it: in each store the manifest first (from then on
    /// it is no longer a backup there), then the archive. `confirm` (the lease's fencing check) runs before each.
    static func remove(_ item: Item, confirm: () throws -> Void) throws -> [String] {
        var stores: [String] = []
        for storage in item.manifestIn + item.archiveIn where !stores.contains(storage.description) {
            stores.append(storage.description)
        }
        for description in stores {
            try confirm()
            if let storage = item.manifestIn.first(where: { $0.description == description }) {
                try storage.delete(key: item.name.manifestName, ifMatch: nil)
            }
            try confirm()
            if let storage = item.archiveIn.first(where: { $0.description == description }) {
                try storage.delete(key: item.name.fileName, ifMatch: nil)
            }
        }
        return stores
    }
}
