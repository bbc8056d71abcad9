/// Resolves settings in one order for every executable: flag > environment > `<NAME>_FILE` (secrets) > default.
///
/// swift-argument-parser has no environment support; this small resolver is the one place that adds it.
/// Reading a `_FILE` is injected so this module stays free of I/O.
public struct ConfigurationValues: Sendable {
    public let environment: [String: String]
    public let flags: [String: String]
    private let readFile: @Sendable (String) throws -> String
    /// Told the name of every setting asked for: the configuration reference's tests check that what each
    /// executable reads is what its `--help` lists.
    private let observe: (@Sendable (String) -> Void)?

    public init(
        environment: [String: String], flags: [String: String] = [:],
        readFile: @escaping @Sendable (String) throws -> String, observe: (@Sendable (String) -> Void)? = nil
    ) {
        self.environment = environment
        self.flags = flags
        self.readFile = readFile
        self.observe = observe
    }

    /// The raw value, or nil when unset and without default. An empty value counts as set.
    public func string(_ setting: Setting) throws(ContingencyError) -> String? {
        observe?(setting.name)
        if let value = flags[setting.name] { return value }
        let filePath = setting.readsFile ? environment[setting.name + "_FILE"].flatMap { $0.isEmpty ? nil : $0 } : nil
        // `NAME: ${NAME:-}` beside a `NAME_FILE` secret is a common compose line: an empty NAME never hides
        // the file (for AGE_RECIPIENTS that would silently turn encryption off).
        if let value = environment[setting.name], !(value.isEmpty && filePath != nil) { return value }
        if let path = filePath {
            do {
                var text = try readFile(path)
                // "\r\n" is one Character, which neither hasSuffix("\n") nor hasSuffix("\r") matches.
                while text.hasSuffix("\n") || text.hasSuffix("\r") || text.hasSuffix("\r\n") { text.removeLast() }
                return text
            } catch {
                throw .configuration(
                    "\(setting.name)_FILE=\(path) cannot be read (\(error))",
                    hint: "mount the secret file there or unset \(setting.name)_FILE")
            }
        }
        return setting.defaultValue
    }

    /// Whether the operator gave a value (a flag, the variable, or its `_FILE`), as opposed to its default.
    public func isSet(_ setting: Setting) -> Bool {
        observe?(setting.name)
        return flags[setting.name] != nil || environment[setting.name].map { !$0.isEmpty } == true
            || (setting.readsFile && environment[setting.name + "_FILE"].map { !$0.isEmpty } == true)
    }

    /// A size in bytes, written `16777216`, `16MiB`, `16M`, `512KiB` or `1G` (binary units either way).
    public func byteSize(_ setting: Setting) throws(ContingencyError) -> Int64? {
        guard let raw = try nonEmpty(setting) else { return nil }
        guard let value = ByteFormat.parse(raw) else {
            throw .configuration("\(setting.name)=\(raw) is not a size", hint: "write it like 16MiB, 64M or 1073741824")
        }
        return value
    }

    public func nonEmpty(_ setting: Setting) throws(ContingencyError) -> String? {
        guard let value = try string(setting), !value.isEmpty else { return nil }
        return value
    }

    public func required(_ setting: Setting) throws(ContingencyError) -> String {
        guard let value = try nonEmpty(setting) else {
            throw .configuration("\(setting.name) is not set", hint: "set it in the environment or with its flag")
        }
        return value
    }

    /// One of a fixed set of words; anything else is refused, naming the accepted values.
    public func choice<T: RawRepresentable & CaseIterable>(_ setting: Setting, as: T.Type) throws(ContingencyError) -> T
    where T.RawValue == String {
        let raw = try required(setting)
        guard let value = T(rawValue: raw.lowercased()) else {
            let accepted = T.allCases.map(\.rawValue).joined(separator: ", ")
            throw .configuration("\(setting.name)=\(raw) is not one of: \(accepted)")
        }
        return value
    }

    public func bool(_ setting: Setting) throws(ContingencyError) -> Bool {
        let raw = try string(setting) ?? "false"
        switch raw.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off", "": return false
        default: throw .configuration("\(setting.name)=\(raw) is not a boolean (true or false)")
        }
    }

    public func integer(_ setting: Setting, in range: ClosedRange<Int>) throws(ContingencyError) -> Int? {
        guard let raw = try nonEmpty(setting) else { return nil }
        guard let value = Int(raw), range.contains(value) else {
            throw .configuration(
                "\(setting.name)=\(raw) is not a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    /// Seconds, written `90`, `90s`, `5m`, `1h30m` or `2d`.
    public func duration(_ setting: Setting) throws(ContingencyError) -> Int {
        let raw = try required(setting)
        if let seconds = Int(raw), seconds >= 0 { return seconds }
        guard let seconds = Schedule.parseInterval(raw) else {
            throw .configuration("\(setting.name)=\(raw) is not a duration", hint: "write it like 30s, 5m, 1h30m or 0")
        }
        return seconds
    }
}
