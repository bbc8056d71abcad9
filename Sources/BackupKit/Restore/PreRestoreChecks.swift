import BackupCore
import BackupInterop
import BackupStorage
import Foundation
import Logging

/// The checks made before a restore touches anything, all of them, reported together: whether this
/// pg_restore can read the dump, the server is not older than the dump's source, the roles and extensions
/// the dump needs exist or can be created, there is room for the uploads, the key opens the archive, and
/// who is connected to the target database.
struct PreRestoreChecks {
    /// One check's verdict.
    struct Finding {
        let ok: Bool
        let text: String
        var isKeyProblem = false
    }

    let restore: RestoreJob

    func run(_ target: BackupTarget) async throws -> [Finding] {
        let configuration = restore.configuration
        let metadata = target.manifest?.metadata
        var findings: [Finding] = []
        let tools = PostgresTools(binDirectory: configuration.pgBinDirectory)

        // pg_restore can read what pg_dump wrote only if it is at least as new.
        let pgRestore = try await tools.version(of: "pg_restore")
        if let dumped = metadata.flatMap({ PostgresVersion.parse(toolVersionLine: $0.pgDumpVersion) }) {
            let readable = PostgresVersion(major: pgRestore.major, minor: 0) >= PostgresVersion(major: dumped.major, minor: 0)
            findings.append(
                Finding(
                    ok: readable,
                    text: readable
                        ? "pg_restore \(pgRestore) can read a dump made by pg_dump \(dumped)"
                        : "the dump was made by pg_dump \(dumped); pg_restore \(pgRestore) cannot read it: use pg_restore \(dumped.majorName) or newer (postgresql-client-\(dumped.majorName), or PG_BIN_DIR)"))
        }

        // The target server: only when the database is restored (RESTORE_PARTS).
        let parameters = try ConnectionParameters(configuration.database)
        let database = parameters.databaseName(environment: ProcessInfo.processInfo.environment) ?? "postgres"
        var connected: PostgresConnection?
        if configuration.parts.contains(.database) {
            do {
                connected = try PostgresConnection(parameters.maintenance(besides: database))
            } catch let error as ContingencyError {
                return findings + [Finding(ok: false, text: "the target server does not answer: \(error.message)")]
            }
        } else {
            let parts = configuration.parts.names.joined(separator: ",")
            findings.append(
                Finding(ok: true, text: "the database is not restored (RESTORE_PARTS=\(parts)): its server is not checked"))
        }
        if let server = connected {
            if let source = metadata.flatMap({ PostgresVersion.parse(toolVersionLine: $0.serverVersion) }) {
                let target = server.serverVersion
                let fits = PostgresVersion(major: target.major, minor: 0) >= PostgresVersion(major: source.major, minor: 0)
                findings.append(
                    Finding(
                        ok: fits,
                        text: fits
                            ? "the server (PostgreSQL \(target)) is not older than the backup's source (PostgreSQL \(source))"
                            : "the server runs PostgreSQL \(target), older than the backup's source (PostgreSQL \(source)): restore onto PostgreSQL \(source.majorName) or newer"))
            }

            // Roles and extensions.
            if configuration.noOwner {
                findings.append(Finding(ok: true, text: "RESTORE_NO_OWNER=true: no roles needed, objects will belong to \(server.user)"))
            } else if let needed = metadata?.roles {
                let present = Set(try Self.column(server, "SELECT rolname FROM pg_roles"))
                let missing = needed.filter { !present.contains($0) }
                let canCreate = try server.query("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user").value(0, 0) == "t"
                let inGlobals = target.manifest?.metadata.member(named: ArchiveLayout.globals) != nil
                if missing.isEmpty {
                    findings.append(Finding(ok: true, text: "the roles the dump names exist (\(needed.joined(separator: ", ")))"))
                } else if canCreate && inGlobals {
                    findings.append(Finding(ok: true, text: "missing roles will be created from globals.sql: \(missing.joined(separator: ", "))"))
                } else {
                    findings.append(
                        Finding(
                            ok: false,
                            text: "missing roles \(missing.joined(separator: ", ")) cannot be created (\(inGlobals ? "\(server.user) lacks CREATEROLE" : "the backup has no globals.sql")): create them first, or set RESTORE_NO_OWNER=true"))
                }
            }
            if let needed = metadata?.extensions, !needed.isEmpty {
                let available = Set(try Self.column(server, "SELECT name FROM pg_available_extensions"))
                let missing = needed.filter { !available.contains($0) }
                findings.append(
                    Finding(
                        ok: missing.isEmpty,
                        text: missing.isEmpty
                            ? "the extensions the dump uses are available (\(needed.joined(separator: ", ")))"
                            : "extensions \(missing.joined(separator: ", ")) are not available on the server: install their packages first"))
            }
            if let size = metadata?.databaseSize {
                findings.append(Finding(ok: true, text: "the database took \(ByteFormat.string(size)) on its source server: the target needs room for it"))
            }
        }

        // Room for what the manifest says will be written before anything is swapped in: the uploads where they
        // are staged (beside UPLOADS_DIR, or inside it when it is a mount point) and the dump in the staging folder
        // (sealed when encrypted: age adds 16 bytes a 64 KiB chunk); both at once when they share a file system.
        // Extraction stops at these declared sizes, so this is all the room the restore takes.
        if let metadata {
            var needs: [(what: String, path: String, bytes: Int64)] = []
            if configuration.parts.contains(.uploads), let uploads = configuration.paths.uploadsDirectory,
                let bytes = metadata.uploads?.bytes
            {
                let staging = FolderSwap.stagingFolder(for: FolderSwap.resolved(uploads), id: "check")
                needs.append(("\(ByteFormat.string(bytes)) of uploads", (staging as NSString).deletingLastPathComponent, bytes))
            }
            if let dump = metadata.member(named: ArchiveLayout.databaseDump) {
                needs.append(
                    ("the \(ByteFormat.string(dump.size)) database.dump", restore.stores.staging.folder,
                     Self.sum([dump.size, dump.size / 4096, 4096])))
            }
            var devices: [UInt64] = []
            var shared: [UInt64: (space: FileSystemSpace, path: String, bytes: Int64, what: [String])] = [:]
            for need in needs {
                guard let space = try? FileSystemSpace.of(need.path) else { continue }
                if shared[space.device] == nil { devices.append(space.device) }
                let sofar = shared[space.device]?.bytes ?? 0
                shared[space.device, default: (space, need.path, 0, [])].bytes = Self.sum([sofar, need.bytes])
                shared[space.device]?.what.append(need.what)
            }
            for device in devices {
                guard let need = shared[device] else { continue }
                let free = need.space.freeBytes
                let what = need.what.joined(separator: " and ")
                findings.append(
                    Finding(
                        ok: free > need.bytes,
                        text: free > need.bytes
                            ? "\(ByteFormat.string(free)) free in \(need.path) for \(what)"
                            : "only \(ByteFormat.string(free)) free in \(need.path) for \(what): free space first"))
            }
        }

        // The key.
        if target.isEncrypted {
            do {
                let identities = try KeyLoader.decryptionIdentities(restore.configuration, for: target)
                guard let reader = try target.storage.openReader(key: target.fileName) else { throw ContingencyError.noBackupFound("vanished") }
                _ = try AgeDecryptingSource(identities: identities, source: reader)
                findings.append(Finding(ok: true, text: "the key opens the archive"))
            } catch let error as ContingencyError {
                findings.append(Finding(ok: false, text: error.message, isKeyProblem: error.exitStatus == .keyError))
            }
        }

        // Who is connected.
        guard let server = connected else { return findings }
        let sessions = try server.query("SELECT count(*) \(DatabaseRestorer.otherSessions)", [database]).value(0, 0) ?? "0"
        findings.append(
            Finding(
                ok: true,
                text: sessions == "0"
                    ? "no other session is connected to \(database)"
                    : "\(sessions) other session(s) connected to \(database) " + (configuration.terminateConnections
                        ? "will be ended (RESTORE_TERMINATE_CONNECTIONS=true)"
                        : "stay; the restore waits up to RESTORE_LOCK_TIMEOUT for their locks")))
        return findings
    }

    /// Logs every finding and throws one error naming every failure (exit 12 when only keys failed).
    /// Declared sizes added up without trapping: the manifest is read before it is trusted, and a sum past
    /// Int64.max (which no file system has room for) stays Int64.max.
    static func sum(_ sizes: [Int64]) -> Int64 {
        sizes.reduce(0) { total, size in
            let (added, overflow) = total.addingReportingOverflow(max(0, size))
            return overflow ? .max : added
        }
    }

    static func report(_ findings: [Finding], for target: String, logger: Logger) throws {
        for finding in findings {
            if finding.ok { logger.info("Check ok: \(finding.text)") } else { logger.error("Check FAILED: \(finding.text)") }
        }
        let failures = findings.filter { !$0.ok }
        guard !failures.isEmpty else { return }
        let message = "\(target): \(failures.count) pre-restore check(s) failed: " + failures.map(\.text).joined(separator: "; ")
            + "; nothing was restored"
        if failures.allSatisfy(\.isKeyProblem) { throw ContingencyError.key(message) }
        throw ContingencyError.failed(message)
    }

    private static func column(_ connection: PostgresConnection, _ sql: String) throws -> [String] {
        let result = try connection.query(sql)
        return (0..<result.rowCount).compactMap { result.value($0, 0) }
    }
}
