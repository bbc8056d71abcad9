import BackupCore
import BackupStorage
import Foundation
import Logging

/// What a deletion removed.
public struct DeletionResult: Sendable, Equatable {
    public let fileName: String
    /// The stores it was removed from (the volume and the bucket copy, when both held it).
    public let stores: [String]
}

/// Deletes one backup (the admin API's `DELETE /api/backups/:filename`) from every store it is in: in each, the
/// manifest first, so that it stops being a backup before its archive goes. Runs under the store's lease, so
/// never while a restore reads backups (nor while a backup or a cleanup runs). Refused, with a
/// `BackupActionError`, for a name that is not a backup name of this store, an unknown backup, a pinned one, or
/// the only remaining verified one; nothing is touched then.
public struct BackupDeletion: Sendable {
    public let store: StoreConfiguration
    public let stores: Stores
    public let logger: Logger
    public var authenticator = ManifestAuthenticator(keys: [])

    /// `authenticator`: with verify keys (`KeyLoader.authenticator(trust)`), only genuine backups count as verified.
    public init(
        store: StoreConfiguration, stores: Stores, logger: Logger, authenticator: ManifestAuthenticator = .init(keys: [])
    ) {
        self.store = store
        self.stores = stores
        self.logger = logger
        self.authenticator = authenticator
    }

    /// Deletes `fileName`, saying who asked (`by`: the API client's address, …) in the log.
    public func delete(_ fileName: String, by who: String) async throws -> DeletionResult {
        _ = try BackupActionError.parseName(fileName, prefix: store.prefix)
        let lease: Lease
        do {
            lease = try await Lease.acquire(
                BackupJob.lockName, storage: stores.primary, job: "backup deletion", ttl: store.lockTTLSeconds,
                timeout: store.lockTimeoutSeconds)
        } catch let error as ContingencyError where error.exitStatus == .locked {
            throw BackupActionError(
                .inUse, "\(fileName) was not deleted: \(error.message)", hint: "try again once that job has finished")
        }
        defer { lease.release() }
        return try await Blocking.run { try deleteHoldingLease(fileName, by: who, confirm: { try lease.confirm() }) }
    }

    /// The deletion itself, for a caller already holding the store's lease (cleanup).
    func deleteHoldingLease(_ fileName: String, by who: String, confirm: () throws -> Void) throws -> DeletionResult {
        // Every store must be readable: a backup is removed from all of them or from none.
        let inventory = try BackupInventory.read(
            stores: stores.all, prefix: store.prefix, authenticator: authenticator, logger: logger)
        guard let item = inventory.item(fileName), !item.archiveIn.isEmpty || !item.manifestIn.isEmpty else {
            throw BackupActionError(
                .notFound, "no backup \(fileName) in \(stores.all.map(\.description).joined(separator: " or "))",
                hint: "list the backups (GET /api/backups) and name one of them")
        }
        if let pin = inventory.pins[fileName] {
            throw BackupActionError(
                .pinned,
                "\(fileName) is pinned (by \(pin.pinnedBy), \(ISO8601DateFormatter().string(from: pin.pinnedAt))): not deleted",
                hint: "unpin it first if it really must go")
        }
        if item.isGoodBackup, !inventory.items.contains(where: { $0.name != item.name && $0.isGoodBackup }) {
            throw BackupActionError(
                .lastVerified, "\(fileName) is the only remaining verified backup: not deleted",
                hint: "make and verify a newer backup first (backup-job, then restore-job --drill or cleanup-job)")
        }
        let removed = try BackupInventory.remove(item, confirm: confirm)
        logger.info(
            "Deleted \(fileName) from \(removed.joined(separator: " and ")) (asked by \(BackupPins.clean(who)))")
        return DeletionResult(fileName: fileName, stores: removed)
    }
}
