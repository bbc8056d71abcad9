import BackupCore
import BackupStorage
import Foundation
import Logging

/// Pinning (the runbook's "list of critical backups"): a pinned backup is never deleted, by retention or by
/// DELETE. Pins are objects in the primary store (`.contingency/pins/<archive>.json`), so every job and every
/// sidecar sharing the store sees them.
public struct BackupPins: Sendable {
    public let stores: Stores
    public let prefix: String
    public let logger: Logger

    public init(stores: Stores, prefix: String, logger: Logger) {
        self.stores = stores
        self.prefix = prefix
        self.logger = logger
    }

    /// Pins a complete backup. Returns the pin (the existing one when it was already pinned).
    /// Throws `BackupActionError` `.invalidName` or `.notFound`.
    @discardableResult
    public func pin(_ fileName: String, by who: String, reason: String? = nil, now: Date = Date()) throws -> BackupPin {
        let name = try BackupActionError.parseName(fileName, prefix: prefix)
        let inventory = try BackupInventory.read(
            stores: stores.all, prefix: prefix, authenticator: .init(keys: []), logger: logger)
        // A complete backup, or an archive of the runbook's shell script (a backup without a manifest).
        guard let item = inventory.item(fileName), !item.archiveIn.isEmpty else {
            throw BackupActionError(
                .notFound, "no backup \(fileName) in \(stores.all.map(\.description).joined(separator: " or "))")
        }
        if let existing = inventory.pins[fileName] { return existing }
        let pin = BackupPin(
            fileName: fileName, pinnedBy: Self.clean(who), pinnedAt: now, reason: reason.map(Self.clean))
        _ = try stores.primary.create(
            key: BackupPin.key(for: name), data: Array(try ContingencyJSON.encoder().encode(pin)))
        logger.info(
            "Pinned \(fileName) (by \(pin.pinnedBy)\(pin.reason.map { ": \($0)" } ?? "")): retention and deletion keep it"
        )
        return pin
    }

    /// Unpins a backup. Returns false when it was not pinned. Throws `.invalidName` for a name of another store.
    @discardableResult
    public func unpin(_ fileName: String, by who: String) throws -> Bool {
        let name = try BackupActionError.parseName(fileName, prefix: prefix)
        let removed = try stores.primary.delete(key: BackupPin.key(for: name), ifMatch: nil)
        if removed { logger.info("Unpinned \(fileName) (by \(Self.clean(who)))") }
        return removed
    }

    /// Every pin of this prefix, newest backup first.
    public func list() throws -> [BackupPin] {
        try BackupInventory.read(
            stores: [stores.primary], prefix: prefix, authenticator: .init(keys: []), logger: logger
        )
        .pins.values.sorted { $0.fileName > $1.fileName }
    }

    /// One line of at most 200 characters, no control characters: it is logged and stored.
    static func clean(_ text: String) -> String {
        String(String(text.unicodeScalars.map { $0.value < 0x20 || $0 == "\u{7f}" ? " " : Character($0) }).prefix(200))
    }
}
