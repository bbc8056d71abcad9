import BackupCore
import BackupInterop
import Foundation
import Logging

/// Creates the roles a backup's objects need on a server that lacks them, from the backup's `globals.sql`
/// (`pg_dumpall --roles-only`). Only the roles the dump needs (the owners recorded at backup time, and the
/// roles they are members of) are created; roles that exist are left exactly as they are (no ALTER, no
/// password change) and reported. Each new role and its attributes are created in one transaction, so a
/// failure never leaves a bare role that cannot log in.
struct RoleRestorer {
    let connection: PostgresConnection
    let logger: Logger

    /// Returns the roles created. `needed`: the roles the dump's objects belong to (nil: every role in the
    /// file, for backups that did not record them).
    @discardableResult
    func restore(_ globals: [UInt8], needed: [String]?) throws -> [String] {
        let lines = String(decoding: globals, as: UTF8.self).split(separator: "\n").map(String.init)
        let statements = lines.compactMap { line in Self.statement(line).map { (line, $0) } }
        let roles = try connection.query("SELECT rolname FROM pg_roles")
        let existing = Set((0..<roles.rowCount).compactMap { roles.value($0, 0) })
        let superuser = try connection.query("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").value(0, 0) == "t"

        // The roles to create: the needed ones, and the roles they are members of, transitively.
        var wanted = Set(needed ?? statements.compactMap { if case .createRole(let name) = $0.1 { name } else { nil } })
        var grew = true
        while grew {
            grew = false
            for case (_, .grant(let names)) in statements where names.count == 2 && wanted.contains(names[1]) && !wanted.contains(names[0]) {
                wanted.insert(names[0])
                grew = true
            }
        }
        let toCreate = statements.compactMap { statement -> String? in
            if case .createRole(let name) = statement.1, wanted.contains(name), !existing.contains(name) { return name }
            return nil
        }
        let kept = wanted.intersection(existing)

        for name in toCreate {
            let about = statements.filter { $0.1 == .aboutRole(name) }.map { superuser ? $0.0 : Self.withoutPrivilegedAttributes($0.0) }
            do {
                try connection.query("BEGIN")
                try connection.query("CREATE ROLE \(RestoreJob.quoteIdentifier(name))")
                for line in about { try connection.query(line) }
                try connection.query("COMMIT")
            } catch let error as ContingencyError {
                _ = try? connection.query("ROLLBACK")
                throw ContingencyError.failed(
                    "cannot create role \(name) the backup's objects need: \(error.message)",
                    hint: "restore as a role with CREATEROLE (or a superuser), or set RESTORE_NO_OWNER=true to restore without owners")
            }
        }
        for case (let line, .grant(let names)) in statements where names.contains(where: toCreate.contains) {
            do {
                try connection.query(superuser ? line : Self.withoutGrantor(line))
            } catch {
                logger.warning("Membership not restored (\(line)): \(error)")
            }
        }
        if !toCreate.isEmpty { logger.info("Created roles: \(toCreate.joined(separator: ", "))") }
        if !kept.isEmpty { logger.info("Roles already present, left as they are: \(kept.sorted().joined(separator: ", "))") }
        return toCreate
    }

    /// Without superuser rights, PostgreSQL 15 refuses any mention of SUPERUSER, REPLICATION or BYPASSRLS,
    /// even their NO forms: they are dropped (such roles keep the defaults, which are the NO forms).
    static func withoutPrivilegedAttributes(_ line: String) -> String {
        let privileged: Set<String> = ["SUPERUSER", "NOSUPERUSER", "REPLICATION", "NOREPLICATION", "BYPASSRLS", "NOBYPASSRLS"]
        guard line.hasPrefix("ALTER ROLE "), line.contains(" WITH ") else { return line }
        var words = line.dropLast(line.hasSuffix(";") ? 1 : 0).split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        words.removeAll { privileged.contains($0) }
        return words.joined(separator: " ") + ";"
    }

    /// Setting a grantor needs superuser rights: the grant is made by the restoring role instead.
    static func withoutGrantor(_ line: String) -> String {
        guard let range = line.range(of: " GRANTED BY ") else { return line }
        return String(line[..<range.lowerBound]) + ";"
    }

    enum Statement: Equatable {
        case createRole(String)
        /// ALTER ROLE, COMMENT ON ROLE: applied only to roles this restore creates.
        case aboutRole(String)
        /// GRANT role TO member: the granted role, then the member.
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
