import BackupCore
import BackupKit
import BackupStorage
import Foundation
import HTTPTypes
import Hummingbird

/// The admin API (DESIGN.md §6, described in docs/openapi.yaml): every route behind `APIGate`. Each handler
/// parses and checks its input, calls the same use case as the jobs, and answers in the runbook's shapes.
extension Router<SidecarRequestContext> {
    /// Every route of the sidecar, by method and path template: a path that exists under another method is
    /// 405 with `Allow`, not 404 (`APIGate`). Kept beside the routes it lists.
    static let sidecarRoutes: [(method: HTTPRequest.Method, template: String)] = [
        (.get, "/healthz"), (.get, "/metrics"), (.get, "/api/backups"), (.post, "/api/backups"), (.post, "/api/backups/rollback/auto"),
        (.post, "/api/backups/cleanup"), (.get, "/api/backups/requests/:id"), (.delete, "/api/backups/:filename"),
        (.post, "/api/backups/:filename/restore"), (.post, "/api/backups/:filename/pin"),
        (.post, "/api/backups/:filename/unpin"), (.get, "/api/status"), (.get, "/"), (.get, "/status.css"),
        (.get, "/status.js"), (.get, "/favicon.svg"),
    ]

    /// The methods `path` answers to (empty: no such path).
    static func allowedMethods(_ path: String) -> [HTTPRequest.Method] {
        // Empty segments skipped, as the router skips them (`//api/backups/` is `/api/backups`).
        let segments = path.split(separator: "/")
        // A constant segment wins over a parameter, as in the router: POST /api/backups/cleanup is cleanup.
        let matching = sidecarRoutes.filter { route in
            let template = route.template.split(separator: "/")
            return template.count == segments.count
                && zip(template, segments).allSatisfy { $0.hasPrefix(":") || $0 == $1 }
        }
        let exact = matching.filter { route in
            !route.template.split(separator: "/").contains { $0.hasPrefix(":") }
        }
        return (exact.isEmpty ? matching : exact).map(\.method)
    }

    func addBackupRoutes(_ sidecar: SidecarContext) {
        let api = BackupsAPI(sidecar: sidecar)
        let group = self.group("api/backups")
        group.get { request, context in try await api.list(request, context) }
        group.post { request, context in try await api.create(request, context) }
        group.post("rollback/auto") { request, context in try await api.rollbackAuto(request, context) }
        group.post("cleanup") { request, context in try await api.cleanup(request, context) }
        group.get("requests/:id") { request, context in try await api.requestStatus(request, context) }
        group.delete(":filename") { request, context in try await api.delete(request, context) }
        group.post(":filename/restore") { request, context in try await api.restore(request, context) }
        group.post(":filename/pin") { request, context in try await api.pin(request, context) }
        group.post(":filename/unpin") { request, context in try await api.unpin(request, context) }
    }
}

/// The handlers of the admin API, over one sidecar's context.
struct BackupsAPI: Sendable {
    let sidecar: SidecarContext
    var configuration: SidecarConfiguration { sidecar.configuration }
    var prefix: String { configuration.store.prefix }

    // MARK: GET /api/backups

    struct ListBody: Encodable {
        let success = true
        let count: Int
        let backups: [BackupSummary]
    }

    func list(_ request: Request, _ context: SidecarRequestContext) async throws -> Response {
        let stores = sidecar.stores.all
        let prefix = prefix
        let logger = sidecar.logger
        let pins = BackupPins(stores: sidecar.stores, prefix: prefix, logger: logger)
        let authenticator = sidecar.authenticator()
        let (entries, locations, pinned) = try await Blocking.run {
            () throws -> ([BackupEntry], [String: [String]], Set<String>) in
            let catalog = BackupCatalog(storages: stores, prefix: prefix, logger: logger, authenticator: authenticator)
            let entries = try catalog.list()
            var locations: [String: [String]] = [:]
            for storage in stores {
                guard let names = try? catalog.completeNames(in: storage) else { continue }
                for name in names { locations[name.fileName, default: []].append(BackupSummary.storeName(storage)) }
            }
            return (entries, locations, Set(try pins.list().map(\.fileName)))
        }
        let now = Date()
        let backups = entries.map {
            BackupSummary($0, stores: locations[$0.fileName] ?? [], pinned: pinned.contains($0.fileName), now: now)
        }
        return APIResponse.json(ListBody(count: backups.count, backups: backups))
    }

    // MARK: POST /api/backups

    struct CreateInput: APIInput {
        var label: String?
        static let fields = ["label"]
    }

    struct CreatedBackup: Encodable {
        let filename: String
        let size: Int64
        let sizeFormatted: String
        let created: Date
        let label: String?
        let duration: Double
    }

    struct CreatedBody: Encodable {
        let success = true
        let message: String
        let backup: CreatedBackup
    }

    struct AcceptedBody: Encodable {
        let success = true
        let message: String
        let request: String
        let status: String
    }

    func create(_ request: Request, _ context: SidecarRequestContext) async throws -> Response {
        let input = try await RequestBody.decode(CreateInput.self, from: request, optional: true)
        let label = try Self.checkedLabel(input?.label)
        let background = try Self.waitParameter(request) == false
        guard let values = sidecar.values else {
            throw APIError(.serviceUnavailable, "this sidecar takes no backups (it was started without its settings)")
        }
        var backup: BackupConfiguration
        do {
            backup = try BackupConfiguration.load(values)
        } catch {
            throw APIError(
                .serviceUnavailable,
                "this sidecar cannot take backups: \(error). Give it the backup settings (DATABASE_*, UPLOADS_DIR, …) as backup-job has them")
        }
        backup.store.lockTimeoutSeconds = configuration.api.backupWaitSeconds
        if let label { backup.label = label }
        var job = BackupJob(configuration: backup, stores: sidecar.stores, logger: sidecar.logger)
        job.countsWebhookFailures = false  // the sidecar's registry counts its deliveries (job="sidecar")
        if backup.appControl.kind != .command { job.appControl = backup.appControl.makeAppControl(logger: sidecar.logger) }
        let what = label.map { "backup (label \"\(LogText.clean($0))\")" } ?? "backup"
        sidecar.logger.info("[API] POST /api/backups from \(context.client): \(what) asked for")
        guard background else {
            let result = try await job.runReporting(to: sidecar.notifications)
            sidecar.logger.info("[API] POST /api/backups from \(context.client): \(result.name.fileName) created")
            return APIResponse.json(CreatedBody(message: "Backup créé avec succès", backup: Self.created(result)))
        }
        let board = RequestBoard(storage: sidecar.storage)
        let requester = "api \(context.client)"
        let worker = configuration.sidecarID
        // A client that asks again while its backup still waits or runs (a retry, a second pipeline) follows
        // that one: each call would otherwise queue a whole backup of its own.
        let (id, reserved) = sidecar.backgroundBackups.reserve(label: label)
        guard reserved else {
            sidecar.logger.info("[API] POST /api/backups from \(context.client): joined the background backup \(id)")
            return APIResponse.json(
                AcceptedBody(
                    message: "Backup déjà en cours en arrière-plan", request: id, status: "/api/backups/requests/\(id)"),
                status: .accepted, headers: [.location: "/api/backups/requests/\(id)"])
        }
        let backgroundBackups = sidecar.backgroundBackups
        // Taken before the request exists and held (renewed, LOCK_TTL) until its outcome is written: a backup
        // request not finished whose lease is free was left by a sidecar that stopped, and `endAbandoned` says so
        // rather than leave it pending or running for ever.
        let running: Lease
        do {
            running = try await Lease.acquire(
                Self.runningLease(id), storage: sidecar.storage, job: "health-sidecar \(worker)",
                ttl: configuration.store.lockTTLSeconds, timeout: 0)
        } catch {
            backgroundBackups.finish(id)
            throw error
        }
        do {
            _ = try await Blocking.run {
                _ = try board.submit(id: id, intent: .backup, requestedBy: requester, now: Date())
                _ = try board.transition(id, from: .pending, to: .running, worker: worker)
            }
        } catch {
            running.release()
            backgroundBackups.finish(id)
            throw error
        }
        let logger = sidecar.logger
        let client = context.client
        let notifications = sidecar.notifications
        Task.detached {
            defer {
                running.release()
                backgroundBackups.finish(id)
            }
            let outcome: (StoreRequest.Status, String, String?)
            do {
                let result = try await job.runReporting(to: notifications)
                logger.info("[API] Backup request \(id) from \(client): \(result.name.fileName) created")
                outcome = (.succeeded, "created \(result.name.fileName) (\(ByteFormat.string(result.manifest.archive.size)))", result.name.fileName)
            } catch {
                logger.error("[API] Backup request \(id) from \(client) failed: \(error)")
                outcome = (.failed, "\(error)", nil)
            }
            _ = try? await Blocking.run {
                try board.update(id) { stored in
                    guard stored.status == .running else { return false }
                    stored.status = outcome.0
                    stored.reason = outcome.1
                    stored.target = outcome.2
                    return true
                }
            }
        }
        return APIResponse.json(
            AcceptedBody(message: "Backup démarré en arrière-plan", request: id, status: "/api/backups/requests/\(id)"),
            status: .accepted, headers: [.location: "/api/backups/requests/\(id)"])
    }

    static func created(_ result: BackupResult) -> CreatedBackup {
        CreatedBackup(
            filename: result.name.fileName, size: result.manifest.archive.size,
            sizeFormatted: ByteFormat.string(result.manifest.archive.size), created: result.name.date,
            label: result.manifest.metadata.label, duration: (result.duration * 1000).rounded() / 1000)
    }

    /// `?wait=true|false` (default true).
    static func waitParameter(_ request: Request) throws -> Bool {
        guard let raw = request.uri.queryParameters.get("wait") else { return true }
        switch raw.lowercased() {
        case "true", "1", "yes": return true
        case "false", "0", "no": return false
        default: throw APIError(.badRequest, "wait=\(LogText.clean(raw, limit: 40)) is not true or false")
        }
    }

    /// A label is an operator's note: one line of at most 200 characters.
    static func checkedLabel(_ label: String?) throws -> String? {
        guard let label else { return nil }
        let trimmed = label.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw APIError(.badRequest, "label is empty") }
        guard trimmed.count <= 200 else { throw APIError(.badRequest, "label is longer than 200 characters") }
        guard !trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw APIError(.badRequest, "label holds control characters")
        }
        return trimmed
    }
}
