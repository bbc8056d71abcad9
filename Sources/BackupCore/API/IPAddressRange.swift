import Foundation

/// An IPv4 or IPv6 address, or a CIDR range of them (`10.0.0.0/8`, `fd00::/8`, `127.0.0.1`): the reverse proxies
/// whose `X-Forwarded-For` the admin API believes (TRUSTED_PROXIES).
public struct IPAddressRange: Sendable, Equatable, CustomStringConvertible {
    /// 4 bytes (IPv4) or 16 (IPv6), the host bits cleared.
    public let network: [UInt8]
    public let prefixLength: Int

    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = IPAddressRange.bytes(of: parts[0]) else { return nil }
        let bits = address.count * 8
        var length = bits
        if parts.count == 2 {
            guard let given = Int(parts[1]), (0...bits).contains(given), parts[1].allSatisfy(\.isASCII) else {
                return nil
            }
            length = given
        }
        network = IPAddressRange.masked(address, to: length)
        prefixLength = length
    }

    /// Whether `address` (text, as a peer or X-Forwarded-For writes it) lies in the range. An IPv4 address
    /// mapped into IPv6 (`::ffff:10.0.0.1`, as a dual-stack listener reports IPv4 peers) counts as IPv4.
    public func contains(_ address: some StringProtocol) -> Bool {
        guard var bytes = IPAddressRange.bytes(of: address) else { return false }
        if bytes.count == 16, network.count == 4, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff,
            bytes[11] == 0xff
        {
            bytes = Array(bytes[12...])
        }
        guard bytes.count == network.count else { return false }
        return IPAddressRange.masked(bytes, to: prefixLength) == network
    }

    public var description: String {
        let address: String
        if network.count == 4 {
            address = network.map(String.init).joined(separator: ".")
        } else {
            address = stride(from: 0, to: 16, by: 2).map { String(Int(network[$0]) << 8 | Int(network[$0 + 1]), radix: 16) }
                .joined(separator: ":")
        }
        return "\(address)/\(prefixLength)"
    }

    /// A list as TRUSTED_PROXIES writes it: comma- or space-separated; nil names the first entry that is not one.
    public static func parseList(_ text: String) -> Result<[IPAddressRange], InvalidEntry> {
        var ranges: [IPAddressRange] = []
        for entry in text.split(whereSeparator: { $0 == "," || $0 == " " }) {
            guard let range = IPAddressRange(entry) else { return .failure(InvalidEntry(text: String(entry))) }
            ranges.append(range)
        }
        return .success(ranges)
    }

    /// The entry of a list that is not an address or a range.
    public struct InvalidEntry: Error, Sendable, Equatable {
        public let text: String
    }

    /// The bytes of an IPv4 (dotted quad) or IPv6 (with `::`, an embedded IPv4 tail, brackets, a zone) address.
    /// Written here: Foundation has no address parser, and inet_pton would put a C call in this pure module.
    static func bytes(of text: some StringProtocol) -> [UInt8]? {
        var text = Substring(text)
        if text.hasPrefix("["), text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        if let zone = text.firstIndex(of: "%") { text = text[..<zone] }
        if !text.contains(":") { return ipv4(text) }
        return ipv6(text)
    }

    private static func ipv4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            // No leading zeros: "010" is octal to some parsers and decimal to others.
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                part == "0" || !part.hasPrefix("0"), let value = UInt8(part)
            else { return nil }
            bytes.append(value)
        }
        return bytes
    }

    private static func ipv6(_ text: Substring) -> [UInt8]? {
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String, allowIPv4Tail: Bool) -> [UInt8]? {
            if part.isEmpty { return [] }
            var bytes: [UInt8] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if allowIPv4Tail, index == pieces.count - 1, piece.contains(".") {
                    guard let tail = ipv4(piece) else { return nil }
                    bytes += tail
                    continue
                }
                guard (1...4).contains(piece.count), piece.allSatisfy(\.isHexDigit), piece.allSatisfy(\.isASCII),
                    let value = UInt16(piece, radix: 16)
                else { return nil }
                bytes += [UInt8(value >> 8), UInt8(value & 0xff)]
            }
            return bytes
        }
        if halves.count == 1 {
            guard let bytes = groups(halves[0], allowIPv4Tail: true), bytes.count == 16 else { return nil }
            return bytes
        }
        guard let head = groups(halves[0], allowIPv4Tail: false), let tail = groups(halves[1], allowIPv4Tail: true),
            head.count + tail.count <= 14
        else { return nil }
        return head + [UInt8](repeating: 0, count: 16 - head.count - tail.count) + tail
    }

    private static func masked(_ bytes: [UInt8], to length: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let keep = max(0, min(8, length - index * 8))
            return keep == 8 ? byte : byte & UInt8(truncatingIfNeeded: 0xff << (8 - keep))
        }
    }
}
