import BackupCore
import BackupKit
import BackupStorage
import Foundation
import Hummingbird

/// The routes that act on one named backup (`DELETE`, `…/restore`, `…/pin`, `…/unpin`) and on the store
/// (`POST /api/backups/cleanup`), each through the use case the jobs share.
extension BackupsAPI {
    /// The `:filename` of the path as the client wrote it: a backup's bare file name. Its checks are the use
    /// case's (`BackupActionError`/`RestoreRequestError` `.invalidName`); here only what is not text at all.
    func fileName(_ context: SidecarRequestContext) throws -> String {
        guard let raw = context.parameters.get("filename"), !raw.isEmpty else {
            throw APIError(.badRequest, "no backup name in the path")
        }
        // Decoded once, exactly once: "%2e%2e%2f" is "../" and is refused as such, "%252e" stays "%2e".
        guard let decoded = raw.removingPercentEncoding else {
            throw APIError(.badRequest, "\(LogText.clean(raw, limit: 80)) is not a backup name of this store")
        }
        return decoded
    }

    // MARK: DELETE /api/backups/:filename

    struct DeletedBody: Encodable {
        let success = true
        let message: String
        let filename: String
        let stores: [String]
    }

    func delete(_ request: Request, _ context: SidecarRequestContext) async throws -> Response {
        let name = try fileName(context)
        var deletion = BackupDeletion(store: configuration.store, stores: sidecar.stores, logger: sidecar.logger)
        // With BACKUP_VERIFY_KEYS, only genuine backups count as "another verified backup": a forged manifest
        // marked verified cannot make the last genuine one deletable.
        if let values = sidecar.values {
            do {
                deletion.authenticator = try KeyLoader.authenticator(try TrustSettings.load(values))
            } catch {
                throw APIError(.serviceUnavailable, "the verify keys cannot be read: \(error)")
            }
        }
        let who = "api \(context.client)"
        do {
            let result = try await deletion.delete(name, by: who)
            sidecar.logger.info(
                "[API] DELETE /api/backups/\(name) from \(context.client): deleted from \(result.stores.joined(separator: " and "))")
            return APIResponse.json(
                DeletedBody(message: "Backup supprimé avec succès", filename: result.fileName, stores: result.stores))
        } catch let error as BackupActionError {
            sidecar.logger.warning(
                "[API] DELETE /api/backups/\(LogText.clean(name)) from \(context.client) refused: \(error)")
            throw APIError.from(error)
        }
    }

    // MARK: POST /api/backups/:filename/restore

    struct RestoreInput: APIInput {
        var parts: [String]?
        var code: Bool?
        static let fields = ["parts", "code"]
    }

    struct RestoreStartedBody: Encodable {
        let success = true
        let message: String
        let warning: String
        let request: String
        let status: String
        let parts: [String]
        let code: Bool
    }

    func restore(_ request: Request, _ context: SidecarRequestContext) async throws -> Response {
        let name = try fileName(context)
        let input = try await RequestBody.decode(RestoreInput.self, from: request, optional: true)
        let storage = sidecar.storage
        let copies = sidecar.stores.copy.map { [$0] } ?? []
        let prefix = prefix
        let requester = "api \(context.client)"
        let stored: StoreRequest
        do {
            stored = try await Blocking.run { () throws(RestoreRequestError) -> StoreRequest in
                try RestoreRequests.submit(
                    backup: name, parts: input?.parts, code: input?.code ?? false, requestedBy: requester,
                    storage: storage, copies: copies, prefix: prefix)
            }
        } catch let error as RestoreRequestError {
            sidecar.logger.warning(
                "[API] POST /api/backups/\(LogText.clean(name))/restore from \(context.client) refused: \(error)")
            throw APIError.from(error)
        }
        let parts = stored.parts ?? RestoreParts.all.names
        sidecar.logger.warning(
            "[API] POST /api/backups/\(name)/restore from \(context.client): restore request \(stored.id) created (\(parts.joined(separator: ", "))\(stored.code == true ? ", and the code" : ""))"
        )
        return APIResponse.json(
            RestoreStartedBody(
                message: "Restauration démarrée en arrière-plan",
                warning: "L'application va redémarrer dans quelques instants", request: stored.id,
                status: "/api/backups/requests/\(stored.id)", parts: parts, code: stored.code ?? false),
            status: .accepted, headers: [.location: "/api/backups/requests/\(stored.id)"])
    }

    // MARK: GET /api/backups/requests/:id

    struct RequestEnvelope: Encodable {
        let success = true
        let request: RequestStatus
    }

    func requestStatus(_ request: Request, _ context: SidecarRequestContext) async throws -> Response {
        let id = context.parameters.get("id") ?? ""
        let storage = sidecar.storage
        do {
            var status = try await Blocking.run { () throws(RestoreRequestError) -> RequestStatus in
                try RestoreRequests.status(id: id, storage: storage)
            }
            if status.intent == StoreRequest.Intent.backup.rawValue, !status.finished,
                let ended = await endAbandoned(id)
            {
                status = ended
            }
            return APIResponse.json(RequestEnvelope(request: status))
        } catch let error as RestoreRequestError {
            throw APIError.from(error)
        }
    }

    /// The lease a sidecar holds while it runs the background backup `id` (`POST /api/backups?wait=false`).
    static func runningLease(_ id: String) -> String { "request-\(id)" }

    /// A background backup not finished whose sidecar no longer holds its lease (it stopped: a rolling update, an
    /// OOM kill) ends failed, saying so, instead of running for ever for whoever polls it. nil: still running.
    func endAbandoned(_ id: String) async -> RequestStatus? {
        let storage = sidecar.storage
        guard
            let lease = try? await Lease.acquire(
                Self.runningLease(id), storage: storage, job: "health-sidecar \(configuration.sidecarID)",
                ttl: configuration.store.lockTTLSeconds, timeout: 0)
        else { return nil }
        defer { lease.release() }
        let ended = try? await Blocking.run {
            try RequestBoard(storage: storage).update(id) { stored in
                guard stored.intent == .backup, !stored.status.isFinished else { return false }
                stored.status = .failed
                stored.reason =
                    "interrupted: \(stored.worker ?? "the sidecar running it") stopped before the backup ended. "
                    + "A backup exists only once its manifest is written: GET /api/backups shows whether it was; "
                    + "if not, ask again"
                return true
            }
        }
        guard let ended else { return nil }
        sidecar.logger.warning("[API] Backup request \(id): \(ended.reason ?? "interrupted")")
        return RequestStatus(ended)
    }

    // MARK: POST /api/backups/:filename/pin and …/unpin

    struct PinInput: APIInput {
        var reason: String?
        static let fields = ["reason"]
    }

    struct PinnedBody: Encodable {
        let success = true
        let message: String
        let pin: BackupPin
    }

    struct UnpinnedBody: Encodable {
        let success = true
        let message: String
        let wasPinned: Bool
    }

    func pin(_ request: Request, _ context: SidecarRequestContext) async throws -> Response {
        let name = try fileName(context)
        let input = try await RequestBody.decode(PinInput.self, from: request, optional: true)
        let reason = try Self.checkedLabel(input?.reason)
        let pins = BackupPins(stores: sidecar.stores, prefix: prefix, logger: sidecar.logger)
        let who = "api \(context.client)"
        do {
            let pin = try await Blocking.run { try pins.pin(name, by: who, reason: reason) }
            sidecar.logger.info("[API] POST /api/backups/\(name)/pin from \(context.client): pinned")
            return APIResponse.json(
                PinnedBody(message: "\(name) is pinned: retention and DELETE keep it until it is unpinned", pin: pin))
        } catch let error as BackupActionError {
            throw APIError.from(error)
        }
    }

    func unpin(_ request: Request, _ context: SidecarRequestContext) async throws -> Response {
        let name = try fileName(context)
        let pins = BackupPins(stores: sidecar.stores, prefix: prefix, logger: sidecar.logger)
        let who = "api \(context.client)"
        do {
            let removed = try await Blocking.run { try pins.unpin(name, by: who) }
            sidecar.logger.info(
                "[API] POST /api/backups/\(name)/unpin from \(context.client): \(removed ? "unpinned" : "was not pinned")")
            return APIResponse.json(
                UnpinnedBody(
                    message: removed ? "\(name) is no longer pinned" : "\(name) was not pinned", wasPinned: removed))
        } catch let error as BackupActionError {
            throw APIError.from(error)
        }
    }

    // MARK: POST /api/backups/cleanup

    struct CleanupInput: APIInput {
        var retentionDays: Int?
        var dryRun: Bool?
        static let fields = ["retentionDays", "dryRun"]
    }

    struct CleanupBody: Encodable {
        let success = true
        let message: String
        let deletedCount: Int
        let deleted: [String]
        let kept: [Kept]
        let retentionDays: Int
        let dryRun: Bool

        struct Kept: Encodable {
            let filename: String
            let reason: String
        }
    }

    func cleanup(_ request: Request, _ context: SidecarRequestContext) async throws -> Response {
        let input = try await RequestBody.decode(CleanupInput.self, from: request, optional: true)
        if let days = input?.retentionDays, !(1...RetentionPolicy.maximumDays).contains(days) {
            throw APIError(.badRequest, "retentionDays must be a whole number from 1 to \(RetentionPolicy.maximumDays)")
        }
        guard let values = sidecar.values else {
            throw APIError(.serviceUnavailable, "this sidecar does not clean up (it was started without its settings)")
        }
        let cleanupConfiguration: CleanupConfiguration
        do {
            cleanupConfiguration = try CleanupConfiguration.load(values)
        } catch {
            throw APIError(
                .serviceUnavailable,
                "this sidecar cannot clean up: \(error). Give it the settings cleanup-job has")
        }
        var job = CleanupJob(configuration: cleanupConfiguration, stores: sidecar.stores, logger: sidecar.logger)
        job.countsWebhookFailures = false  // the sidecar's registry counts its deliveries (job="sidecar")
        job.lockTimeoutSeconds = configuration.api.backupWaitSeconds
        let dryRun = input?.dryRun ?? false
        let result =
            dryRun
            ? try await job.run(retentionDays: input?.retentionDays, dryRun: true)
            : try await sidecar.notifications.monitorCleanup { [job] in
                try await job.run(retentionDays: input?.retentionDays)
            }
        if let refusal = result.refusal {
            sidecar.logger.warning("[API] POST /api/backups/cleanup from \(context.client) refused: \(refusal)")
            throw APIError(.conflict, refusal)
        }
        sidecar.logger.info(
            "[API] POST /api/backups/cleanup from \(context.client): \(result.message) (retention \(result.retentionDays) days)")
        let count = result.deletedCount
        return APIResponse.json(
            CleanupBody(
                message: dryRun
                    ? "\(count) backup\(count == 1 ? "" : "s") would be deleted (dry run)"
                    : "\(count) backup\(count == 1 ? "" : "s") supprimé\(count == 1 ? "" : "s")",
                deletedCount: count, deleted: result.deleted,
                kept: result.kept.map { .init(filename: $0.fileName, reason: $0.reason) },
                retentionDays: result.retentionDays, dryRun: dryRun))
    }
}

extension APIError {
    static func from(_ error: BackupActionError) -> APIError {
        switch error.kind {
        case .invalidName: APIError(.badRequest, error.description)
        case .notFound: APIError(.notFound, error.description)
        case .pinned, .lastVerified, .inUse: APIError(.conflict, error.description)
        }
    }

    static func from(_ error: RestoreRequestError) -> APIError {
        switch error.kind {
        case .invalidName, .invalidParts, .invalidID: APIError(.badRequest, error.description)
        case .notFound: APIError(.notFound, error.description)
        default: APIError(.serviceUnavailable, error.description)  // no runner, the store unreachable
        }
    }
}
