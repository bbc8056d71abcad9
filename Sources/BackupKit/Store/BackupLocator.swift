import BackupCore
import BackupInterop
import BackupStorage
import Foundation
import Logging

/// A backup chosen for a restore, a check or a drill: its archive, the store holding it, its manifest (for a
/// genuine backup, what the signature covers) and whether it is genuine.
struct BackupTarget {
    let fileName: String
    let storage: any Storage
    let manifest: Manifest?
    var authenticity: Authenticity = .notChecked

    /// Encrypted archives end in `.age` (and say so in their manifest).
    var isEncrypted: Bool { fileName.hasSuffix(".age") || manifest?.archive.encrypted == true }

    /// Where to stage its dump: sealed with a key held only in memory when the archive is encrypted;
    /// `followed` (the dump as recorded) for a restore that starts on it as it arrives, block by checked block.
    func stagedDump(in staging: LocalStaging, _ purpose: String, followed: BackupMetadata.Member? = nil) throws -> StagedDump {
        try StagedDump(
            staging: staging, name: "\(purpose)-\(UUID().uuidString.prefix(8).lowercased()).dump", sealed: isEncrypted,
            followed: followed)
    }
}

/// Finds the backup to act on: the one named (LATEST_BACKUP: a name looked up in every store, or a path to an
/// archive), else the newest that is trusted and not dated ahead of the store's clock. With verify keys, a
/// named backup that is not genuine is refused here (exit 12), before a byte of its archive is read; an
/// unsigned one only when RESTORE_ALLOW_UNSIGNED allows it.
struct BackupLocator {
    let stores: Stores
    let store: StoreConfiguration
    let trust: TrustSettings
    let authenticator: ManifestAuthenticator
    let logger: Logger
    /// The store's clock, which a backup's name is compared with: the hosts sharing a store may disagree
    /// about the time, the store's own clock is the one they all see.
    var now: () throws -> Date

    init(stores: Stores, store: StoreConfiguration, trust: TrustSettings, authenticator: ManifestAuthenticator, logger: Logger) {
        self.stores = stores
        self.store = store
        self.trust = trust
        self.authenticator = authenticator
        self.logger = logger
        now = { [primary = stores.primary] in try primary.currentTime() }
    }

    /// The locator for a restore's configuration: its verify keys loaded once, and said at start whether backups
    /// are authenticated.
    init(_ configuration: RestoreConfiguration, stores: Stores, logger: Logger) throws {
        let authenticator = try KeyLoader.authenticator(configuration.trust)
        KeyLoader.announce(authenticator, logger: logger)
        self.init(
            stores: stores, store: configuration.store, trust: configuration.trust, authenticator: authenticator, logger: logger)
    }

    var catalog: BackupCatalog {
        BackupCatalog(storages: stores.all, prefix: store.prefix, logger: logger, authenticator: authenticator)
    }

    func locate(_ requested: String?) throws -> BackupTarget {
        guard let requested else { return try newest() }
        let target = try named(requested)
        switch target.authenticity {
        case .notChecked, .genuine:
            return target
        case .unsigned where trust.allowUnsigned:
            logger.warning("\(target.fileName) is not signed; restoring it because RESTORE_ALLOW_UNSIGNED=true")
            return target
        case .unsigned:
            throw ContingencyError.key(
                "\(target.fileName) is not signed, and BACKUP_VERIFY_KEYS asks for signed backups; nothing was restored",
                hint: "if you know where it comes from (the runbook's shell script, a backup-job without BACKUP_SIGNING_KEY_FILE), set RESTORE_ALLOW_UNSIGNED=true with LATEST_BACKUP=\(target.fileName)")
        case .notGenuine(let reason):
            throw ContingencyError.key(
                "\(target.fileName) is not genuine: \(reason); nothing was restored",
                hint: "restore a backup signed by a key in BACKUP_VERIFY_KEYS; if the key was rotated, add the new public key beside the old one")
        }
    }

    /// The newest trusted backup not dated in the future; the newer ones passed over are named in warnings.
    private func newest() throws -> BackupTarget {
        // A safety backup holds the broken state a rollback replaced: restorable by name, never "the newest".
        let entries = try catalog.list().filter { $0.manifest.metadata.kind != .safety }
        let allowance = TimeInterval(trust.clockSkewAllowance)
        let (chosen, skipped) = NewestBackup.choose(
            entries, name: \.name, authenticity: \.authenticity, now: try now(), allowance: allowance)
        for (entry, reason) in skipped {
            switch reason {
            case .future(let seconds):
                logger.warning(
                    "Passing over \(entry.fileName): its name is dated \(DurationFormat.string(seconds: seconds)) ahead of the store's clock (more than CLOCK_SKEW_ALLOWANCE, \(DurationFormat.string(seconds: allowance))); name it in LATEST_BACKUP to restore it")
            case .notTrusted(let authenticity):
                logger.warning("Passing over \(entry.fileName): \(authenticity)")
            }
        }
        guard let chosen else {
            let passed = skipped.isEmpty ? "" : " (\(skipped.count) passed over: not genuine or dated in the future, see above)"
            throw ContingencyError.noBackupFound(
                "no complete\(authenticator.isEnabled ? ", genuine" : "") backup in \(store.description) (prefix \(store.prefix))\(passed)",
                hint: "check BACKUP_DIR, BACKUP_S3_URL and BACKUP_PREFIX, or name one with LATEST_BACKUP")
        }
        return BackupTarget(
            fileName: chosen.fileName, storage: chosen.storage, manifest: chosen.manifest, authenticity: chosen.authenticity)
    }

    /// The backup named by `requested`. A store holding the archive with its manifest wins over one holding the
    /// archive alone (an interrupted copy or run), and, with verify keys, a genuine copy over one that is not.
    private func named(_ requested: String) throws -> BackupTarget {
        let fileName = BackupName.fileName(fromNameOrPath: requested)
        var candidates = stores.all
        if requested.contains("/") {
            let folder = (requested as NSString).deletingLastPathComponent
            let isPrimary = stores.primary.localFolder.map {
                (folder as NSString).standardizingPath == ($0 as NSString).standardizingPath
            } ?? false
            if !isPrimary { candidates = [try VolumeStorage(root: folder, readOnly: true)] }
        }
        var found: [BackupTarget] = []
        for (index, storage) in candidates.enumerated() {
            do {
                guard try storage.openReader(key: fileName) != nil else { continue }
                let manifest = try BackupCatalog.manifest(key: fileName + ".json", in: storage)
                guard let manifest else {
                    found.append(
                        BackupTarget(
                            fileName: fileName, storage: storage, manifest: nil,
                            authenticity: authenticator.isEnabled ? .unsigned : .notChecked))
                    continue
                }
                let (authenticity, checked) = authenticator.authenticate(manifest, fileName: fileName)
                found.append(BackupTarget(fileName: fileName, storage: storage, manifest: checked, authenticity: authenticity))
                // A copy that is not genuine does not hide a genuine one in the next store.
                if authenticity.isTrusted { break }
            } catch let error as ContingencyError where index > 0 && !error.isCancellation && !found.isEmpty {
                logger.warning("\(fileName) not looked for in \(storage): \(error)")
            }
        }
        if let target = found.first(where: { $0.manifest != nil && $0.authenticity.isTrusted })
            ?? found.first(where: { $0.manifest != nil }) ?? found.first
        {
            return target
        }
        let places = candidates.map(\.description).joined(separator: " or ")
        throw ContingencyError.noBackupFound(
            "LATEST_BACKUP=\(requested): no such archive in \(places)", hint: "list the backups with restore-job --verify or the API")
    }
}
