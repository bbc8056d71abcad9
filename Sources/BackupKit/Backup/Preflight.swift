import BackupCore
import BackupInterop
import Foundation
import Logging

/// Checks made before a backup takes the lock or writes anything: the database answers, pg_dump can dump
/// it, and the folders to back up can be read. Each failure says what to fix.
struct Preflight: Sendable {
    let connection: ConnectionParameters
    let database: String
    let serverVersion: PostgresVersion
    let pgDumpVersion: PostgresVersion
    let requirements: (roles: [String], extensions: [String], size: Int64)

    static func check(_ configuration: BackupConfiguration, tools: PostgresTools, logger: Logger) async throws -> Preflight {
        if let uploads = configuration.paths.uploadsDirectory { try checkReadableFolder(uploads) }
        if let envFile = configuration.paths.envFile, FileManager.default.fileExists(atPath: envFile),
            access(envFile, R_OK) != 0
        {
            throw ContingencyError.failed(
                "ENV_FILE \(envFile) exists but is not readable by uid \(geteuid())",
                hint: "run the job as a user that can read it, or set ENV_FILE to empty to skip it")
        }

        let parameters = try ConnectionParameters(configuration.database)
        let connection = try PostgresConnection(parameters)
        let serverVersion = connection.serverVersion
        let database = connection.database
        let requirements = try connection.requirements()

        let pgDumpVersion = try await tools.version(of: "pg_dump")
        guard PostgresVersion(major: pgDumpVersion.major, minor: 0) >= PostgresVersion(major: serverVersion.major, minor: 0) else {
            throw ContingencyError.failed(
                "pg_dump \(pgDumpVersion) (\(tools.path(of: "pg_dump"))) is older than the server (PostgreSQL \(serverVersion)) and cannot dump it",
                hint: "use pg_dump \(serverVersion.majorName) or newer: install postgresql-client-\(serverVersion.majorName) in the backup image, or point PG_BIN_DIR at its bin folder")
        }
        _ = try await tools.version(of: "pg_restore")
        // The connection's resolved database name goes to pg_dump too, whatever libpq default produced it.
        return Preflight(
            connection: parameters.with("dbname", database), database: database, serverVersion: serverVersion,
            pgDumpVersion: pgDumpVersion, requirements: requirements)
    }

    static func checkReadableFolder(_ path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ContingencyError.failed(
                "UPLOADS_DIR \(path) does not exist",
                hint: "set UPLOADS_DIR to the application's uploads folder, or to empty to back up without uploads")
        }
        guard isDirectory.boolValue else {
            throw ContingencyError.failed("UPLOADS_DIR \(path) is not a folder", hint: "set UPLOADS_DIR to the uploads folder")
        }
        guard let handle = opendir(path) else {
            throw ContingencyError.failed(
                "UPLOADS_DIR \(path) is not readable by uid \(geteuid()): \(String(cString: strerror(errno)))",
                hint: "run the backup job as a user that can read the uploads (or fix their permissions)")
        }
        closedir(handle)
    }
}
