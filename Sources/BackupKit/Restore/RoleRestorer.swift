import BackupCore
import BackupInterop
import Foundation
import Logging

/// Creates the roles a backup's objects need on a server that lacks them, from the backup's `globals.sql`
/// (`pg_dumpall --roles-only`). Roles that exist are left exactly as they are (no ALTER, no password change)
/// and reported; new roles get their attributes, settings, comments and memberships.
struct RoleRestorer {
    let connection: PostgresConnection
    let logger: Logger

    /// Returns the roles created.
    @discardableResult
    func restore(_ globals: [UInt8]) throws -> [String] {
        let roles = try connection.query("SELECT rolname FROM pg_roles")
        let existing = Set((0..<roles.rowCount).compactMap { roles.value($0, 0) })
        var created: [String] = []
        var kept: Set<String> = []
        for line in String(decoding: globals, as: UTF8.self).split(separator: "\n").map(String.init) {
            guard let statement = Self.statement(line) else { continue }
            switch statement {
            case .createRole(let name):
                if existing.contains(name) {
                    kept.insert(name)
                    continue
                }
                do {
                    try connection.query(line)
                } catch let error as ContingencyError {
                    throw ContingencyError.failed(
                        "cannot create role \(name) the backup's objects belong to: \(error.message)",
                        hint: "restore as a role with CREATEROLE (or a superuser), or set RESTORE_NO_OWNER=true to restore without owners")
                }
                created.append(name)
            case .aboutRole(let name):
                if created.contains(name) { try connection.query(line) }
            case .grant(let roles):
                guard roles.contains(where: { created.contains($0) }) else { continue }
                do {
                    try connection.query(line)
                } catch {
                    logger.warning("Membership not restored (\(line)): \(error)")
                }
            }
        }
        if !created.isEmpty { logger.info("Created roles: \(created.joined(separator: ", "))") }
        if !kept.isEmpty { logger.info("Roles already present, left as they are: \(kept.sorted().joined(separator: ", "))") }
        return created
    }

    enum Statement: Equatable {
        case createRole(String)
        /// ALTER ROLE, COMMENT ON ROLE: applied only to roles this restore created.
        case aboutRole(String)
        /// GRANT role TO member: the role names involved.
        case grant([String])
    }

    /// Classifies one line of pg_dumpall's output; nil for anything else (comments, SET, blank lines).
    static func statement(_ line: String) -> Statement? {
        if line.hasPrefix("CREATE ROLE ") { return identifier(after: "CREATE ROLE ", in: line).map(Statement.createRole) }
        for prefix in ["ALTER ROLE ", "COMMENT ON ROLE "] where line.hasPrefix(prefix) {
            return identifier(after: prefix, in: line).map(Statement.aboutRole)
        }
        if line.hasPrefix("GRANT "), line.contains(" TO ") {
            var names: [String] = []
            if let role = identifier(after: "GRANT ", in: line) { names.append(role) }
            if let range = line.range(of: " TO "), let member = identifier(after: "", in: String(line[range.upperBound...])) {
                names.append(member)
            }
            return .grant(names)
        }
        return nil
    }

    /// The (possibly double-quoted) identifier right after `prefix`.
    static func identifier(after prefix: String, in line: String) -> String? {
        var rest = Substring(line.dropFirst(prefix.count))
        if rest.hasPrefix("\"") {
            rest = rest.dropFirst()
            var name = ""
            while let character = rest.first {
                rest = rest.dropFirst()
                if character == "\"" {
                    if rest.first == "\"" {
                        name.append("\"")
                        rest = rest.dropFirst()
                    } else {
                        return name
                    }
                } else {
                    name.append(character)
                }
            }
            return nil
        }
        let name = rest.prefix { $0 != " " && $0 != ";" && $0 != "," }
        return name.isEmpty ? nil : String(name)
    }
}
