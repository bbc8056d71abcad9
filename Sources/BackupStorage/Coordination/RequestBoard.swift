import BackupCore
import Foundation

/// A request to a job, kept in the store (`.contingency/requests/<id>.json`): what to do and how far it got.
/// Whoever wants a backup, a restore or a rollback (the admin API, the health sidecar) writes one; the job
/// that runs it updates its status. They never talk to each other directly.
public struct StoreRequest: Codable, Sendable, Equatable {
    public enum Intent: String, Codable, Sendable, CaseIterable {
        case backup, restore, rollback
    }

    public enum Status: String, Codable, Sendable {
        case pending, running, succeeded, failed
        /// Not run: it was older than its window when a runner found it (a store copied elsewhere replays
        /// nothing).
        case expired
        /// Not run: no longer needed (the application answered HTTP 200 again when a runner took it).
        case skipped

        public var isFinished: Bool { self != .pending && self != .running }
    }

    /// One step of a restore or a rollback, as it happened.
    public struct Step: Codable, Sendable, Equatable {
        public var name: String
        /// `running`, `succeeded`, `failed` or `skipped`.
        public var status: String
        public var started: Date
        public var ended: Date?
        public var detail: String?
        public init(name: String, status: String, started: Date, ended: Date? = nil, detail: String? = nil) {
            self.name = name
            self.status = status
            self.started = started
            self.ended = ended
            self.detail = detail
        }
    }

    /// What opened a rollback request: the sidecar that saw the threshold reached, and when the app was last
    /// seen healthy before (the rollback's target began before that).
    public struct Incident: Codable, Sendable, Equatable {
        public var sidecar: String
        public var opened: Date
        public var lastHealthy: Date?
        public var failures: Int
        public var lastResult: String?
        public init(sidecar: String, opened: Date, lastHealthy: Date?, failures: Int, lastResult: String? = nil) {
            self.sidecar = sidecar
            self.opened = opened
            self.lastHealthy = lastHealthy
            self.failures = failures
            self.lastResult = lastResult
        }
    }

    public var id: String
    public var intent: Intent
    public var status: Status
    /// Why it failed (or a note on success); never a secret.
    public var reason: String?
    /// For a restore or a rollback: the backup to restore (nil: the latest good one).
    public var backup: String?
    /// Who asked: "api", "health-sidecar", an operator's name…
    public var requestedBy: String
    public var created: Date
    public var updated: Date
    /// The job that took it on, while running and after ("restore-job pid 12 on host a").
    public var worker: String?
    /// A rollback's incident.
    public var incident: Incident?
    /// Not run after this time (by the store's clock); nil: no limit.
    public var expires: Date?
    /// The backup it restored (or is restoring), once chosen.
    public var target: String?
    /// The steps so far.
    public var steps: [Step]?
    /// For a restore: the parts to put back (`database`, `uploads`, `env`); nil: all of them. Kept as written, so
    /// that a request naming an unknown part is refused by the runner with a reason rather than left unreadable.
    public var parts: [String]?
    /// For a restore: also put back the application's version recorded with the backup (nil or false: data only,
    /// the application started as it is).
    public var code: Bool?
}

/// The requests of a store. Built only on the `Storage` contract: a request is created with a conditional
/// create, so that for a given id exactly one of any number of creators makes it (the others get the existing
/// one); status changes are compare-and-swaps, so two workers cannot both take the same pending request.
public struct RequestBoard: Sendable {
    public let storage: any Storage
    public static let folder = ".contingency/requests"

    public init(storage: any Storage) { self.storage = storage }

    public static func key(for id: String) -> String { "\(folder)/\(id).json" }

    /// A request larger than this is not read (a request is a few KiB; a huge file would be read whole on
    /// every poll).
    public static let sizeLimit: Int64 = 1 << 20

    /// Creates the request `id` unless it exists. Returns the request as stored, and whether this call made it.
    /// Use a deterministic id (`rollback-<incident>`) for what must happen once however many ask for it.
    public func submit(
        id: String = UUID().uuidString.lowercased(), intent: StoreRequest.Intent, backup: String? = nil, requestedBy: String,
        now: Date = Date(), expires: Date? = nil, incident: StoreRequest.Incident? = nil, parts: [String]? = nil,
        code: Bool? = nil
    ) throws -> (request: StoreRequest, created: Bool) {
        guard Self.isValidID(id) else {
            throw ContingencyError.configuration("request id \(id) may hold only letters, digits, '.', '_' and '-'")
        }
        let request = StoreRequest(
            id: id, intent: intent, status: .pending, reason: nil, backup: backup, requestedBy: requestedBy, created: now,
            updated: now, worker: nil, incident: incident, expires: expires, parts: parts, code: code)
        let data = try encode(request)
        // As stored (dates at the encoder's precision), so every caller sees the same value.
        let stored = try ContingencyJSON.decoder().decode(StoreRequest.self, from: Data(data))
        if try storage.create(key: Self.key(for: id), data: data) != nil { return (stored, true) }
        guard let existing = try storage.read(key: Self.key(for: id)) else {
            throw ContingencyError.failed("request \(id) exists in \(storage) but cannot be read back")
        }
        // Our own create went through but its answer was lost, and the retry was refused: still ours.
        if existing.data == data { return (stored, true) }
        guard let request = try get(id)?.request else {
            throw ContingencyError.failed("request \(id) exists in \(storage) but cannot be read back")
        }
        return (request, false)
    }

    /// The request `id` with its version and when the store last wrote it (by the store's clock), or nil. A
    /// file whose content names another id is refused: the id inside is what every later step uses (lease
    /// names, keys), so it must be the file's own.
    public func get(_ id: String) throws -> (request: StoreRequest, etag: String)? {
        try getStored(id).map { ($0.request, $0.etag) }
    }

    /// `get`, with the time the store last wrote the request.
    public func getStored(_ id: String) throws -> (request: StoreRequest, etag: String, modified: Date)? {
        guard Self.isValidID(id) else {
            throw ContingencyError.failed("request id \(id) may hold only letters, digits, '.', '_' and '-'")
        }
        guard let object = try storage.read(key: Self.key(for: id)) else { return nil }
        guard object.data.count <= Self.sizeLimit else {
            throw ContingencyError.failed(
                "the request \(storage)/\(Self.key(for: id)) is \(object.data.count) bytes, over \(Self.sizeLimit)", hint: "delete it")
        }
        let request: StoreRequest
        do {
            request = try ContingencyJSON.decoder().decode(StoreRequest.self, from: Data(object.data))
        } catch {
            throw ContingencyError.failed("the request \(storage)/\(Self.key(for: id)) is not readable (\(error))", hint: "delete it")
        }
        guard request.id == id else {
            throw ContingencyError.failed(
                "the request \(storage)/\(Self.key(for: id)) names another id inside (\(request.id.prefix(80)))", hint: "delete it")
        }
        return (request, object.etag, object.modified)
    }

    /// Every request, oldest first. Unreadable ones (malformed, oversized, an id that is not the file's own) are
    /// skipped, each reported through `skipped` when given.
    public func list(skipped: (String) -> Void = { _ in }) throws -> [StoreRequest] {
        try storage.list(folder: Self.folder).filter { $0.name.hasSuffix(".json") }.compactMap { object in
            let id = String(object.name.dropLast(5))
            guard object.size <= Self.sizeLimit else {
                skipped("\(object.name) is \(object.size) bytes, over \(Self.sizeLimit): not read")
                return nil
            }
            do {
                return try get(id)?.request
            } catch {
                skipped("\(error)")
                return nil
            }
        }
        .sorted { $0.created == $1.created ? $0.id < $1.id : $0.created < $1.created }
    }

    /// Moves `id` from `expected` to `status` with a compare-and-swap. Returns the updated request, or nil when
    /// it is not (or no longer) in `expected` status: another worker took it, or it vanished.
    @discardableResult
    public func transition(
        _ id: String, from expected: StoreRequest.Status, to status: StoreRequest.Status, reason: String? = nil,
        worker: String? = nil, now: Date = Date()
    ) throws -> StoreRequest? {
        while true {
            guard let (current, etag) = try get(id), current.status == expected else { return nil }
            var next = current
            next.status = status
            next.reason = reason ?? current.reason
            next.worker = worker ?? current.worker
            next.updated = now
            let data = try encode(next)
            if try storage.replace(key: Self.key(for: id), data: data, ifMatch: etag) != nil { return next }
            // Our own write went through but its answer was lost (the retry was refused): done.
            if try storage.read(key: Self.key(for: id))?.data == data { return next }
            // Changed between the read and the write: read again and decide again.
        }
    }

    /// Changes the request `id` with a compare-and-swap: `change` gets the current request and edits it, or
    /// returns false to leave it as it is. Retried on a concurrent change. Returns the stored result, or nil
    /// when the request does not exist or `change` declined.
    @discardableResult
    public func update(_ id: String, now: Date = Date(), _ change: (inout StoreRequest) -> Bool) throws -> StoreRequest? {
        while true {
            guard let (current, etag) = try get(id) else { return nil }
            var next = current
            guard change(&next), next.id == id else { return nil }
            next.updated = now
            let data = try encode(next)
            if try storage.replace(key: Self.key(for: id), data: data, ifMatch: etag) != nil { return next }
            if try storage.read(key: Self.key(for: id))?.data == data { return next }
        }
    }

    static func isValidID(_ id: String) -> Bool { StoreObjectName.isValid(id) }

    private func encode(_ request: StoreRequest) throws -> [UInt8] {
        Array(try ContingencyJSON.encoder().encode(request))
    }
}
