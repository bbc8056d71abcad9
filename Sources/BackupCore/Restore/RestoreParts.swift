/// One part of a backup that a restore can put back.
public enum RestorePart: String, Sendable, CaseIterable, Codable, Comparable {
    /// The application's database (database.dump, with the roles of globals.sql).
    case database
    /// The uploads folder (UPLOADS_DIR).
    case uploads
    /// The .env file (ENV_FILE), from .env.backup.
    case env

    public static func < (lhs: RestorePart, rhs: RestorePart) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// Which parts a restore puts back (RESTORE_PARTS, a restore request's `parts`); by default all of them. Whatever
/// the choice, the whole archive is verified before anything is touched; the parts not chosen are left as they are.
public struct RestoreParts: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The chosen parts, never empty.
    public let chosen: Set<RestorePart>

    public static let all = RestoreParts(unchecked: Set(RestorePart.allCases))

    private init(unchecked chosen: Set<RestorePart>) { self.chosen = chosen }

    /// `parts` (at least one).
    public init(_ parts: some Sequence<RestorePart>) throws(ContingencyError) {
        let chosen = Set(parts)
        guard !chosen.isEmpty else { throw Self.noneChosen("the parts") }
        self.chosen = chosen
    }

    public func contains(_ part: RestorePart) -> Bool { chosen.contains(part) }

    /// Every part: a whole restore.
    public var isAll: Bool { chosen.count == RestorePart.allCases.count }

    /// The chosen parts' names, in a fixed order (database, uploads, env).
    public var names: [String] { chosen.sorted().map(\.rawValue) }

    /// The parts not chosen, in the same order.
    public var left: [RestorePart] { RestorePart.allCases.filter { !chosen.contains($0) } }

    /// "database, uploads, env".
    public var description: String { names.joined(separator: ", ") }

    /// RESTORE_PARTS's value: part names separated by commas (spaces around them and empty items ignored, case
    /// ignored, repeats allowed). Unset or blank: every part. `source` names the value in errors.
    public static func parse(
        _ value: String?, source: String = "RESTORE_PARTS"
    ) throws(ContingencyError) -> RestoreParts {
        guard let value, !value.allSatisfy({ $0 == " " || $0 == "\t" }) else { return .all }
        let items = value.split(separator: ",").map { String($0).trimmingSpaces }.filter { !$0.isEmpty }
        guard !items.isEmpty else { throw noneChosen("\(source)=\(value)") }
        return try parse(list: items, source: source)
    }

    /// A list of part names (a restore request's `parts`, as the admin API receives it). nil: every part; an
    /// empty list or an unknown name is refused.
    public static func parse(list: [String]?, source: String = "parts") throws(ContingencyError) -> RestoreParts {
        guard let list else { return .all }
        var chosen = Set<RestorePart>()
        for item in list {
            guard let part = RestorePart(rawValue: item.trimmingSpaces.lowercased()) else {
                throw ContingencyError.configuration(
                    "\(source): \"\(Self.shown(item))\" is not a part of a backup",
                    hint: "choose among \(choices) (comma-separated in RESTORE_PARTS, e.g. RESTORE_PARTS=uploads)")
            }
            chosen.insert(part)
        }
        guard !chosen.isEmpty else { throw noneChosen(source) }
        return RestoreParts(unchecked: chosen)
    }

    private static func noneChosen(_ source: String) -> ContingencyError {
        .configuration(
            "\(source) chooses no part to restore", hint: "name at least one of \(choices), or leave it unset to restore all")
    }

    /// "database, uploads, env".
    private static var choices: String { RestorePart.allCases.map(\.rawValue).joined(separator: ", ") }

    /// A name from outside, cut short and with control characters escaped, for a message.
    private static func shown(_ text: String) -> String {
        String(text.prefix(40)).unicodeScalars.map { scalar in
            scalar.value < 0x20 || scalar.value == 0x7F ? "\\u{\(String(scalar.value, radix: 16))}" : String(scalar)
        }
        .joined()
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        var text = Substring(self)
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" { text.removeLast() }
        return String(text)
    }
}
