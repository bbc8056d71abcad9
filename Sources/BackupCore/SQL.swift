/// The one place where text becomes part of an SQL statement. Every identifier and string literal that
/// BackupKit puts into SQL it builds goes through here; values are better still passed as parameters
/// (`$1`), which need no quoting at all.
///
/// Pure Swift rather than libpq's `PQescapeIdentifier`/`PQescapeLiteral`: the role statements are built from
/// a parsed `globals.sql` before any connection is used (and tested as plain values), and neither form below
/// depends on the session: identifiers are always double-quoted, and a literal holding a backslash takes the
/// `E'…'` form, which means the same whatever `standard_conforming_strings` is. Text holding a NUL cannot
/// reach the server (libpq ends the statement there); `containsNUL` lets callers refuse it first.
public enum SQL {
    /// `name` as a double-quoted identifier, its `"` doubled: always quoted, so case and keywords are kept
    /// exactly (`App` stays `App`, `all` is a role named all, never the keyword ALL).
    public static func identifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// `text` as a string literal: `'…'` with `'` doubled, or `E'…'` with `\` doubled too when it holds a
    /// backslash.
    public static func literal(_ text: String) -> String {
        let quoted = text.replacingOccurrences(of: "'", with: "''")
        guard text.contains("\\") else { return "'" + quoted + "'" }
        return "E'" + quoted.replacingOccurrences(of: "\\", with: "\\\\") + "'"
    }

    /// Whether `text` holds a NUL, which no identifier or literal sent through libpq can carry.
    public static func containsNUL(_ text: String) -> Bool { text.utf8.contains(0) }
}
