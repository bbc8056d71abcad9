extension RoleCatalog {
    /// Parses `globals.sql` as pg_dumpall 15 to 17 writes it with `--roles-only`, one statement per line (a string
    /// may go on over several, as a role's comment holding line breaks does), and
    /// refuses the whole file at the first line that is not exactly such a statement: a line it does not know,
    /// two statements on a line, a name not quoted the way pg_dumpall quotes names (`App` unquoted: PostgreSQL
    /// would fold it to `app`), a reserved name (`ALL`, `PUBLIC`, `CURRENT_USER`, `CURRENT_ROLE`, `SESSION_USER`,
    /// `NONE`, `pg_*`) where pg_dumpall never writes one, a name longer than PostgreSQL keeps (63 bytes; it
    /// would be cut to another role's name), an attribute outside the allow-list, a plain-text password, a role
    /// altered or granted that the file does not create, bytes that are not UTF-8 or control characters.
    /// Comments, blank lines, `SET`/`RESET` lines, psql's `\restrict`/`\unrestrict` and privileges on
    /// configuration parameters are read and never acted on. Nothing of the file is ever sent to a server:
    /// a restore builds its own statements from the result.
    public static func parse(_ bytes: [UInt8]) throws -> RoleCatalog {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw refusal(line: nil, excerpt: nil, "it is not UTF-8 text")
        }
        var catalog = RoleCatalog()
        var altered: Set<String> = []
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var index = 0
        while index < lines.count {
            let number = index + 1
            var statement = lines[index]
            index += 1
            // A string holding line breaks (a role's comment) goes on over the next lines, as pg_dumpall writes it;
            // nothing else does. Where the statement ends is found line by line, so that it is read once whole
            // (reading it again at every line would take hours for a forged file of long lines).
            var open = !isCommentOrCommand(statement) && endsInsideString(statement[...], startingInside: false)
            while open, index < lines.count, index - number < 1000 {
                statement += "\n" + lines[index]
                open = endsInsideString(lines[index][...], startingInside: true)
                index += 1
            }
            do {
                try catalog.read(statement, number: number, altered: &altered)
            } catch let problem as LineProblem {
                throw refusal(line: number, excerpt: excerpt(statement), problem.reason)
            }
        }
        return catalog
    }

    /// Lines `read` takes whole without reading any string in them: comments and psql's meta-commands.
    private static func isCommentOrCommand(_ line: String) -> Bool { line.hasPrefix("--") || line.hasPrefix("\\") }

    /// Whether a single-quoted string is open at the end of `line`, given whether one was at its start: inside
    /// one, `''` is a quote and a lone `'` ends it; outside, `"…"` (where `""` is a quote) may hold a `'`.
    static func endsInsideString(_ line: Substring, startingInside: Bool) -> Bool {
        enum State { case plain, string, name }
        var state: State = startingInside ? .string : .plain
        var scalars = line.unicodeScalars[...]
        while let scalar = scalars.popFirst() {
            switch (state, scalar) {
            case (.plain, "'"): state = .string
            case (.plain, "\""): state = .name
            case (.string, "'"):
                if scalars.first == "'" { scalars.removeFirst() } else { state = .plain }
            case (.name, "\""):
                if scalars.first == "\"" { scalars.removeFirst() } else { state = .plain }
            default: break
            }
        }
        return state == .string
    }

    /// Why one line was refused.
    struct LineProblem: Error {
        let reason: String
        init(_ reason: String) { self.reason = reason }

        /// A single-quoted string not closed on its line.
        static let openString = "an unterminated string"
    }

    private static func refusal(line: Int?, excerpt: String?, _ reason: String) -> ContingencyError {
        let place = line.map { "globals.sql line \($0)\(excerpt.map { " (\($0))" } ?? "")" } ?? "globals.sql"
        return ContingencyError.failed(
            "\(place) is refused: \(reason). pg_dumpall does not write this, so the backup's roles were written by someone else; no role was created or changed and nothing was restored",
            hint:
                "restore a backup you trust (LATEST_BACKUP=…), or set RESTORE_NO_OWNER=true to restore without roles, owners and grants"
        )
    }

    /// The line for an error message: control characters escaped, a password never shown, at most 120 characters.
    static func excerpt(_ line: String) -> String {
        var shown = line
        if let password = shown.range(of: "PASSWORD") { shown = String(shown[..<password.upperBound]) + " …" }
        var escaped = ""
        for scalar in shown.unicodeScalars {
            if RoleCatalog.isControl(scalar) {
                escaped += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped.count > 120 ? String(escaped.prefix(117)) + "…" : escaped
    }

    /// C0 and C1 control characters and DEL: never in a name or string a restore accepts, escaped in messages.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }

    private mutating func read(_ line: String, number: Int, altered: inout Set<String>) throws {
        if line.allSatisfy({ $0 == " " || $0 == "\t" }) || line.hasPrefix("--") { return }
        if line.hasPrefix("\\") {
            // psql meta-commands: pg_dumpall writes \restrict and \unrestrict with a random key around its output.
            let words = line.split(separator: " ", omittingEmptySubsequences: false)
            guard words.count == 2, words[0] == "\\restrict" || words[0] == "\\unrestrict",
                words[1].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) })
            else { throw LineProblem("an unknown psql command") }
            return
        }
        var tokens = try Token.split(line)
        guard tokens.last == .punctuation(";") else { throw LineProblem("it does not end with ;") }
        tokens.removeLast()
        guard !tokens.contains(.punctuation(";")) else { throw LineProblem("it holds more than one statement") }
        var reader = TokenReader(tokens)

        switch reader.next() {
        case .word("SET"), .word("RESET"):
            // Session settings of pg_dumpall's own psql session; a restore has its own.
            return
        case .word("CREATE"):
            try reader.expect("ROLE")
            let name = try reader.roleName(allowPredefined: false)
            try reader.end()
            guard role(named: name) == nil else { throw LineProblem("role \(name) is created twice") }
            roles.append(RoleDefinition(name: name, line: number))
        case .word("ALTER"):
            try reader.expect("ROLE")
            let name = try reader.roleName(allowPredefined: false)
            guard let index = roles.firstIndex(where: { $0.name == name }) else {
                throw LineProblem(
                    "it alters role \(name), which the file does not create (existing roles are never altered)")
            }
            switch reader.next() {
            case .word("WITH"):
                guard altered.insert(name).inserted else {
                    throw LineProblem("role \(name)'s attributes are given twice")
                }
                roles[index].attributes = try reader.attributes()
            case .word("SET"):
                roles[index].settings.append(try reader.setting())
            default:
                throw LineProblem("only ALTER ROLE … WITH and ALTER ROLE … SET are understood")
            }
        case .word("COMMENT"):
            try reader.expect("ON")
            try reader.expect("ROLE")
            let name = try reader.roleName(allowPredefined: false)
            guard let index = roles.firstIndex(where: { $0.name == name }) else {
                throw LineProblem("it comments on role \(name), which the file does not create")
            }
            try reader.expect("IS")
            guard case .string(let comment) = reader.next() else { throw LineProblem("a comment must be a string") }
            try reader.end()
            roles[index].comment = comment
        case .word("GRANT") where tokens.contains(.word("PARAMETER")),
            .word("REVOKE") where tokens.contains(.word("PARAMETER")):
            try reader.parameterPrivilege()
            ignored.append(
                "line \(number): privileges on configuration parameters are not restored (\(Self.excerpt(line)))")
        case .word("GRANT"):
            var membership = try reader.membership()
            membership.line = number
            guard role(named: membership.member) != nil else {
                throw LineProblem("it grants to role \(membership.member), which the file does not create")
            }
            guard RoleCatalog.isPredefined(membership.role) || role(named: membership.role) != nil else {
                throw LineProblem("it grants role \(membership.role), which the file does not create")
            }
            memberships.append(membership)
        default:
            throw LineProblem("not a statement pg_dumpall --roles-only writes")
        }
    }
}

/// One lexical token of a `globals.sql` line.
enum Token: Equatable {
    /// A bare word as written: a keyword (pg_dumpall writes them upper case) or an unquoted name.
    case word(String)
    /// A double-quoted identifier, `""` undoubled.
    case quoted(String)
    /// A single-quoted string, `''` undoubled (standard_conforming_strings on, as pg_dumpall sets it).
    case string(String)
    case number(String)
    case punctuation(Character)

    /// The tokens of `line`; anything else (control characters, `E'…'` escapes, operators) is refused.
    static func split(_ line: String) throws -> [Token] {
        var tokens: [Token] = []
        var scalars = Substring(line).unicodeScalars[...]
        func quoted(_ quote: Unicode.Scalar) throws -> String {
            var value = String.UnicodeScalarView()
            scalars.removeFirst()
            while true {
                guard let scalar = scalars.popFirst() else {
                    throw RoleCatalog.LineProblem(quote == "'" ? RoleCatalog.LineProblem.openString : "an unterminated quote")
                }
                // Line breaks and tabs are kept in strings (a comment may hold them), never in names.
                if RoleCatalog.isControl(scalar) && !(quote == "'" && (scalar == "\n" || scalar == "\t")) {
                    throw RoleCatalog.LineProblem("a control character")
                }
                if scalar == quote {
                    guard scalars.first == quote else { return String(value) }
                    scalars.removeFirst()
                }
                value.append(scalar)
            }
        }
        while let scalar = scalars.first {
            switch scalar {
            case " ", "\t":
                scalars.removeFirst()
            case "\"":
                tokens.append(.quoted(try quoted("\"")))
            case "'":
                tokens.append(.string(try quoted("'")))
            case ",", ";", "=", ".":
                tokens.append(.punctuation(Character(scalar)))
                scalars.removeFirst()
            case "0"..."9":
                let digits = scalars.prefix { ("0"..."9").contains($0) }
                scalars.removeFirst(digits.count)
                tokens.append(.number(String(String.UnicodeScalarView(digits))))
            case "a"..."z", "A"..."Z", "_":
                let word = scalars.prefix {
                    ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_"
                        || $0 == "$"
                }
                scalars.removeFirst(word.count)
                // E'…', U&"…", B'…': forms pg_dumpall does not write here.
                if scalars.first == "'" || scalars.first == "\"" { throw RoleCatalog.LineProblem("a prefixed quote") }
                tokens.append(.word(String(String.UnicodeScalarView(word))))
            default:
                throw RoleCatalog.LineProblem(
                    RoleCatalog.isControl(scalar)
                        ? "a control character" : "the character U+\(String(scalar.value, radix: 16, uppercase: true))")
            }
        }
        return tokens
    }
}

/// Reads the tokens of one statement (its final `;` removed) in order.
struct TokenReader {
    private var tokens: ArraySlice<Token>

    init(_ tokens: [Token]) { self.tokens = tokens[...] }

    mutating func next() -> Token? { tokens.popFirst() }

    mutating func peek(_ keyword: String) -> Bool {
        guard tokens.first == .word(keyword) else { return false }
        tokens.removeFirst()
        return true
    }

    mutating func expect(_ keyword: String) throws {
        guard next() == .word(keyword) else { throw RoleCatalog.LineProblem("\(keyword) expected") }
    }

    func end() throws {
        guard tokens.isEmpty else { throw RoleCatalog.LineProblem("unexpected words at its end") }
    }

    /// A name as pg_dumpall's fmtId writes it: unquoted only when it is lower case letters, digits and `_`
    /// (anything else is quoted, so an unquoted `App` or `ALL` was not written by it), at most 63 bytes.
    mutating func name(_ what: String) throws -> String {
        let name: String
        switch next() {
        case .quoted(let value):
            name = value
        case .word(let value):
            guard value.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" })
            else {
                throw RoleCatalog.LineProblem(
                    "the \(what) \(value) is not quoted as pg_dumpall quotes names (PostgreSQL would fold it to \(value.lowercased()))"
                )
            }
            name = value
        default:
            throw RoleCatalog.LineProblem("a \(what) expected")
        }
        guard !name.isEmpty else { throw RoleCatalog.LineProblem("an empty \(what)") }
        guard name.utf8.count <= 63 else {
            throw RoleCatalog.LineProblem(
                "the \(what) \(name.prefix(63))… is longer than the 63 bytes PostgreSQL keeps")
        }
        return name
    }

    /// A role's name; a reserved one is refused (see `RoleCatalog.isReserved`), except, with
    /// `allowPredefined`, a `pg_*` role (a granted role).
    mutating func roleName(allowPredefined: Bool) throws -> String {
        let name = try name("role name")
        if RoleCatalog.reservedNames.contains(name.lowercased()) {
            throw RoleCatalog.LineProblem("\(name) is a reserved word, not a role")
        }
        if RoleCatalog.isPredefined(name) && !allowPredefined {
            throw RoleCatalog.LineProblem(
                "\(name) is one of PostgreSQL's predefined roles, which a restore never creates, alters or grants to")
        }
        return name
    }

    /// `ALTER ROLE … WITH`'s attributes, each at most once, from the allow-list only.
    mutating func attributes() throws -> RoleAttributes {
        var attributes = RoleAttributes()
        var seen: Set<String> = []
        func once(_ name: String) throws {
            guard seen.insert(name).inserted else { throw RoleCatalog.LineProblem("\(name) is given twice") }
        }
        let flags: [String: WritableKeyPath<RoleAttributes, Bool>] = [
            "SUPERUSER": \.superuser, "INHERIT": \.inherit, "CREATEROLE": \.createRole, "CREATEDB": \.createDB,
            "LOGIN": \.login, "REPLICATION": \.replication, "BYPASSRLS": \.bypassRLS,
        ]
        while let token = next() {
            guard case .word(let word) = token else { throw RoleCatalog.LineProblem("an attribute expected") }
            if let flag = flags[word] {
                try once(word)
                attributes[keyPath: flag] = true
            } else if word.hasPrefix("NO"), let flag = flags[String(word.dropFirst(2))] {
                try once(String(word.dropFirst(2)))
                attributes[keyPath: flag] = false
            } else if word == "CONNECTION" {
                try expect("LIMIT")
                try once(word)
                guard case .number(let digits) = next(), let limit = Int32(digits) else {
                    throw RoleCatalog.LineProblem("CONNECTION LIMIT needs a number")
                }
                attributes.connectionLimit = Int(limit)
            } else if word == "VALID" {
                try expect("UNTIL")
                try once(word)
                guard case .string(let time) = next(), !time.isEmpty, time.count <= 64,
                    time.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || " :+-.".contains($0)) })
                else { throw RoleCatalog.LineProblem("VALID UNTIL needs a timestamp") }
                attributes.validUntil = time
            } else if word == "PASSWORD" {
                try once(word)
                guard case .string(let hash) = next(), Self.isPasswordHash(hash) else {
                    throw RoleCatalog.LineProblem(
                        "a PASSWORD must be a SCRAM-SHA-256 or md5 hash, never a plain-text password")
                }
                attributes.passwordHash = hash
            } else {
                throw RoleCatalog.LineProblem("the attribute \(word) is not one a restore accepts")
            }
        }
        return attributes
    }

    /// Whether `text` is a password hash PostgreSQL stores:
    /// `SCRAM-SHA-256$<iterations>:<salt>$<stored key>:<server key>` (base64) or `md5` and 32 hexadecimal digits.
    static func isPasswordHash(_ text: String) -> Bool {
        if text.hasPrefix("md5") {
            let digits = text.dropFirst(3)
            return digits.count == 32 && digits.allSatisfy { $0.isHexDigit && !$0.isUppercase }
        }
        guard text.hasPrefix("SCRAM-SHA-256$") else { return false }
        let parts = text.dropFirst("SCRAM-SHA-256$".count).split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return false }
        let first = parts[0].split(separator: ":", omittingEmptySubsequences: false)
        let second = parts[1].split(separator: ":", omittingEmptySubsequences: false)
        let base64 = { (part: Substring) in
            !part.isEmpty && part.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "+/=".contains($0)) }
        }
        return first.count == 2 && !first[0].isEmpty && first[0].allSatisfy { $0.isASCII && $0.isNumber }
            && base64(first[1])
            && second.count == 2 && base64(second[0]) && base64(second[1])
    }

    /// `SET parameter TO 'value'[, 'value' …]` (after `ALTER ROLE name`).
    mutating func setting() throws -> RoleSetting {
        var parameter = try name("parameter")
        // A custom parameter written unquoted as two names (`myapp.tenant`).
        while tokens.first == .punctuation(".") {
            tokens.removeFirst()
            parameter += "." + (try name("parameter"))
        }
        try expect("TO")
        var values: [String] = []
        repeat {
            guard case .string(let value) = next() else {
                throw RoleCatalog.LineProblem("a setting's value must be a string")
            }
            values.append(value)
        } while comma()
        try end()
        return RoleSetting(parameter: parameter, values: values)
    }

    /// `role TO member [WITH option, …] [GRANTED BY grantor]` (after `GRANT`).
    mutating func membership() throws -> RoleMembership {
        let role = try roleName(allowPredefined: true)
        try expect("TO")
        let member = try roleName(allowPredefined: false)
        var membership = RoleMembership(role: role, member: member)
        if peek("WITH") {
            var seen: Set<String> = []
            repeat {
                guard case .word(let option) = next(), seen.insert(option).inserted else {
                    throw RoleCatalog.LineProblem("a membership option expected, each at most once")
                }
                switch option {
                case "ADMIN":
                    try expect("OPTION")
                    membership.adminOption = true
                case "INHERIT", "SET":
                    let value: Bool
                    switch next() {
                    case .word("TRUE"): value = true
                    case .word("FALSE"): value = false
                    default: throw RoleCatalog.LineProblem("\(option) needs TRUE or FALSE")
                    }
                    if option == "INHERIT" { membership.inherit = value } else { membership.set = value }
                default:
                    throw RoleCatalog.LineProblem("the membership option \(option) is not one a restore accepts")
                }
            } while comma()
        }
        if peek("GRANTED") {
            try expect("BY")
            // Kept out of what a restore grants, but a reserved grantor is no more pg_dumpall's than any other.
            let grantor = try name("grantor")
            if RoleCatalog.isReserved(grantor) { throw RoleCatalog.LineProblem("\(grantor) is not a role that grants") }
        }
        try end()
        return membership
    }

    /// `GRANT|REVOKE privilege[, …] ON PARAMETER name[, …] TO|FROM role[, …] [WITH GRANT OPTION]`: checked for
    /// form only, since it is never restored.
    mutating func parameterPrivilege() throws {
        repeat {
            guard case .word = next() else { throw RoleCatalog.LineProblem("a privilege expected") }
            while case .word(let word)? = tokens.first, word != "ON" { tokens.removeFirst() }
        } while comma()
        try expect("ON")
        try expect("PARAMETER")
        repeat { _ = try name("parameter") } while comma()
        guard let direction = next(), direction == .word("TO") || direction == .word("FROM") else {
            throw RoleCatalog.LineProblem("TO or FROM expected")
        }
        repeat {
            if !peek("PUBLIC") { _ = try name("role name") }
        } while comma()
        if peek("WITH") {
            try expect("GRANT")
            try expect("OPTION")
        }
        try end()
    }

    /// Takes a `,` if one comes next.
    mutating func comma() -> Bool {
        guard tokens.first == .punctuation(",") else { return false }
        tokens.removeFirst()
        return true
    }
}
