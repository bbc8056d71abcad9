import BackupCore
import BackupStorage
import Foundation

/// The admin API's restores: `POST /api/backups/:filename/restore` creates a restore request that the rollback
/// runner (`restore-job --loop`) runs; `GET /api/backups/requests/:id` reads a request's status. Plain functions
/// over the store, callable from the HTTP routes and the tests alike; blocking (call them through
/// `Blocking.run` from async code).
public enum RestoreRequests {
    /// Creates a restore request for `backup` and returns it as stored (status `pending`, a fresh id).
    ///
    /// - `backup`: a backup's file name in this store (`<prefix>_YYYY-MM-DD_HH-MM-SS.tar.gz`, `.age` when
    ///   encrypted), never a path; anything else is `.invalidName` and nothing is read or written.
    /// - `parts`: `database`, `uploads`, `env`; nil: all of them. An unknown name or an empty list is `.invalidParts`.
    /// - `code`: also put back the application's version recorded with the backup (the app control's start on
    ///   it, as a rollback does); false: data only, the application started as it is.
    /// - `storage`: the store's primary storage (where requests and the runners' heartbeats live); `copies`: other
    ///   stores the backup may be found in (the bucket copy), as the runner looks in them too.
    ///
    /// Refused with `.notFound` when no store holds the backup (its archive and its manifest), and
    /// with `.noRunner` when no runner's heartbeat is fresh by the store's clock (see `RunnerHeartbeat.isFresh`):
    /// a request nobody runs would wait until it expires.
    public static func submit(
        backup: String, parts: [String]? = nil, code: Bool = false, requestedBy: String, storage: any Storage,
        copies: [any Storage] = [], prefix: String, now: Date = Date()
    ) throws(RestoreRequestError) -> StoreRequest {
        let name = try validName(backup, prefix: prefix)
        let chosen: RestoreParts
        do {
            chosen = try RestoreParts.parse(list: parts)
        } catch {
            throw RestoreRequestError(.invalidParts, error.description)
        }
        let stores = [storage] + copies
        let found: Bool
        do {
            // Both: the manifest marks a complete backup, and a manifest whose archive was deleted by hand is none.
            found = try stores.contains { store in
                try store.openReader(key: name.manifestName) != nil && store.openReader(key: name.fileName) != nil
            }
        } catch {
            throw RestoreRequestError(.store, "cannot look for \(name.fileName) in the store: \(error)")
        }
        guard found else {
            let searched = stores.map(\.description).joined(separator: " or ")
            throw RestoreRequestError(
                .notFound,
                "no complete backup named \(name.fileName) in \(searched) (a backup is its archive with its .json manifest beside it)")
        }
        try requireRunner(storage)
        let who = String(Self.printable(requestedBy).prefix(200))
        do {
            let submitted = try RequestBoard(storage: storage).submit(
                id: "restore-\(UUID().uuidString.lowercased())", intent: .restore, backup: name.fileName,
                requestedBy: who.isEmpty ? "api" : who, now: now, parts: parts == nil ? nil : chosen.names, code: code)
            return submitted.request
        } catch {
            throw RestoreRequestError(.store, "cannot write the restore request to \(storage): \(error)")
        }
    }

    /// `name` as a backup of this store's prefix, or `.invalidName`.
    static func validName(_ name: String, prefix: String) throws(RestoreRequestError) -> BackupName {
        guard let parsed = BackupName.parse(fileName: name, prefix: prefix), parsed.fileName == name else {
            throw RestoreRequestError(
                .invalidName,
                "\"\(printable(name).prefix(120))\" is not the name of a backup of this store "
                    + "(\(prefix)_YYYY-MM-DD_HH-MM-SS.tar.gz, .tar.zst, .age when encrypted); a backup is named, never a path")
        }
        return parsed
    }

    /// Text from outside without its control characters, for a message or a stored field.
    static func printable(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }))
    }

    /// Throws `.noRunner` unless some runner's heartbeat was written recently by the store's clock.
    public static func requireRunner(_ storage: any Storage) throws(RestoreRequestError) {
        let fresh: Bool
        do {
            let now = try storage.currentTime()
            fresh = try storage.list(folder: RunnerHeartbeat.folder).contains { object in
                guard object.name.hasSuffix(".json"), object.size <= 64 * 1024,
                    let read = try storage.read(key: object.key),
                    let heartbeat = try? ContingencyJSON.decoder().decode(RunnerHeartbeat.self, from: Data(read.data))
                else { return false }
                return heartbeat.isFresh(writtenAt: read.modified, now: now)
            }
        } catch {
            throw RestoreRequestError(.store, "cannot read the restore runners' heartbeats in \(storage): \(error)")
        }
        guard fresh else {
            throw RestoreRequestError(
                .noRunner,
                "no restore runner is running: no restore-job --loop has written its heartbeat to "
                    + "\(storage)/\(RunnerHeartbeat.folder) lately, so the restore would never start. Start one "
                    + "(restore-job --loop, with the same BACKUP_DIR or BACKUP_S3_URL) and ask again")
        }
    }

    /// The request `id` (a restore's or a rollback's) for `GET /api/backups/requests/:id`. `.invalidID` for an id
    /// that cannot be a request's, `.notFound` for none, `.store` when the store cannot be read or the request is
    /// unreadable.
    public static func status(id: String, storage: any Storage) throws(RestoreRequestError) -> RequestStatus {
        guard StoreObjectName.isValid(id) else {
            throw RestoreRequestError(
                .invalidID, "\"\(printable(id).prefix(80))\" is not a request id (letters, digits, '.', '_' and '-')")
        }
        let found: StoreRequest?
        do {
            found = try RequestBoard(storage: storage).get(id)?.request
        } catch {
            throw RestoreRequestError(.store, "cannot read the request \(id): \(error)")
        }
        guard let found else { throw RestoreRequestError(.notFound, "no request \(id) in \(storage)") }
        return RequestStatus(found)
    }
}

/// A request as an operator follows it (`GET /api/backups/requests/:id`): what it is, where it got, why.
public struct RequestStatus: Codable, Sendable, Equatable {
    public var id: String
    /// `restore`, `rollback` or `backup`.
    public var intent: String
    /// `pending`, `running`, `succeeded`, `failed`, `expired` or `skipped`.
    public var status: String
    /// Finished (whatever the outcome): nothing more will happen to it.
    public var finished: Bool
    /// Why it failed, or what it did.
    public var reason: String?
    /// The backup asked for (nil: the newest good one) and the one restored, once chosen.
    public var backup: String?
    public var target: String?
    /// For a restore: the parts and whether the code was asked for.
    public var parts: [String]?
    public var code: Bool?
    public var requestedBy: String
    /// The runner that took it.
    public var worker: String?
    public var created: Date
    public var updated: Date
    /// Each step with its start and end times.
    public var steps: [StoreRequest.Step]

    public init(_ request: StoreRequest) {
        id = request.id
        intent = request.intent.rawValue
        status = request.status.rawValue
        finished = request.status.isFinished
        reason = request.reason
        backup = request.backup
        target = request.target
        parts = request.intent == .restore ? (request.parts ?? RestoreParts.all.names) : nil
        code = request.intent == .restore ? (request.code ?? false) : nil
        requestedBy = request.requestedBy
        worker = request.worker
        created = request.created
        updated = request.updated
        steps = request.steps ?? []
    }
}
