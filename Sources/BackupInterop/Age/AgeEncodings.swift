/// Bech32 (BIP 173) as age uses it: no length limit on the data part, all-lowercase or all-uppercase only,
/// the checksum computed over the lowercase form. Written here because no Swift Bech32 library is available
/// to the package; it is small and covered by the age keys in the tests (our keys against age-keygen's).
enum Bech32 {
    private static let alphabet = Array("qpzry9x8gf2tvdw0s3jn54khce6mua7l".utf8)
    private static let alphabetIndex: [Int8] = {
        var table = [Int8](repeating: -1, count: 128)
        for (value, character) in alphabet.enumerated() { table[Int(character)] = Int8(value) }
        return table
    }()

    /// Why a string is not valid Bech32. Never carries the string (it may be a secret key).
    enum DecodeError: Error, Equatable {
        case mixedCase
        case noSeparator
        case invalidCharacter
        case badChecksum
        case badPadding
    }

    /// Encodes `data` under `hrp`; the result is lowercase unless `uppercase`.
    static func encode(hrp: String, data: [UInt8], uppercase: Bool = false) -> String {
        let lowerHRP = Array(hrp.lowercased().utf8)
        let values = convertBits(data, from: 8, to: 5, pad: true)!
        let checksum = self.checksum(hrp: lowerHRP, values: values)
        var out = lowerHRP
        out.append(UInt8(ascii: "1"))
        for value in values + checksum { out.append(alphabet[Int(value)]) }
        let text = String(decoding: out, as: UTF8.self)
        return uppercase ? text.uppercased() : text
    }

    /// Decodes a Bech32 string into its human-readable part (in the case it was written in) and its data.
    static func decode(_ text: String) throws(DecodeError) -> (hrp: String, data: [UInt8]) {
        let bytes = Array(text.utf8)
        let hasLower = bytes.contains { (0x61...0x7a).contains($0) }
        let hasUpper = bytes.contains { (0x41...0x5a).contains($0) }
        if hasLower && hasUpper { throw .mixedCase }
        guard let separator = bytes.lastIndex(of: UInt8(ascii: "1")), separator >= 1, separator + 7 <= bytes.count else {
            throw .noSeparator
        }
        let hrp = bytes[..<separator]
        guard hrp.allSatisfy({ (33...126).contains($0) }) else { throw .invalidCharacter }
        var values: [UInt8] = []
        values.reserveCapacity(bytes.count - separator - 1)
        for byte in bytes[(separator + 1)...] {
            let lower = (0x41...0x5a).contains(byte) ? byte | 0x20 : byte
            guard lower < 128, alphabetIndex[Int(lower)] >= 0 else { throw .invalidCharacter }
            values.append(UInt8(alphabetIndex[Int(lower)]))
        }
        let lowerHRP = hrp.map { (0x41...0x5a).contains($0) ? $0 | 0x20 : $0 }
        guard polymod(expand(lowerHRP) + values) == 1 else { throw .badChecksum }
        guard let data = convertBits(Array(values.dropLast(6)), from: 5, to: 8, pad: false) else { throw .badPadding }
        return (String(decoding: hrp, as: UTF8.self), data)
    }

    private static func polymod(_ values: [UInt8]) -> UInt32 {
        let generators: [UInt32] = [0x3b6a_57b2, 0x2650_8e6d, 0x1ea1_19fa, 0x3d42_33dd, 0x2a14_62b3]
        var checksum: UInt32 = 1
        for value in values {
            let top = checksum >> 25
            checksum = (checksum & 0x1ff_ffff) << 5 ^ UInt32(value)
            for bit in 0..<5 where (top >> UInt32(bit)) & 1 == 1 { checksum ^= generators[bit] }
        }
        return checksum
    }

    private static func expand(_ hrp: [UInt8]) -> [UInt8] {
        hrp.map { $0 >> 5 } + [0] + hrp.map { $0 & 31 }
    }

    private static func checksum(hrp: [UInt8], values: [UInt8]) -> [UInt8] {
        let mod = polymod(expand(hrp) + values + [0, 0, 0, 0, 0, 0]) ^ 1
        return (0..<6).map { UInt8((mod >> UInt32(5 * (5 - $0))) & 31) }
    }

    /// Regroups bits; without padding, leftover bits must be fewer than `from` and all zero.
    private static func convertBits(_ data: [UInt8], from: Int, to: Int, pad: Bool) -> [UInt8]? {
        var accumulator = 0
        var bits = 0
        var out: [UInt8] = []
        let mask = (1 << to) - 1
        for value in data {
            accumulator = (accumulator << from) | Int(value)
            bits += from
            while bits >= to {
                bits -= to
                out.append(UInt8((accumulator >> bits) & mask))
            }
            accumulator &= (1 << bits) - 1
        }
        if pad {
            if bits > 0 { out.append(UInt8((accumulator << (to - bits)) & mask)) }
        } else if bits >= from || accumulator != 0 {
            return nil
        }
        return out
    }
}

/// The base64 of age headers: standard alphabet, no `=` padding, canonical only (RFC 4648 §3.5: the unused
/// low bits of the last character must be zero). Foundation's decoder accepts padding and non-canonical
/// input, which the format forbids, hence this one.
enum AgeBase64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let values: [Int8] = {
        var table = [Int8](repeating: -1, count: 256)
        for (value, character) in alphabet.enumerated() { table[Int(character)] = Int8(value) }
        return table
    }()

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = 0
        while index < bytes.count {
            let remaining = bytes.count - index
            let b0 = Int(bytes[index])
            let b1 = remaining > 1 ? Int(bytes[index + 1]) : 0
            let b2 = remaining > 2 ? Int(bytes[index + 2]) : 0
            out.append(alphabet[b0 >> 2])
            out.append(alphabet[((b0 & 0x03) << 4) | (b1 >> 4)])
            if remaining > 1 { out.append(alphabet[((b1 & 0x0f) << 2) | (b2 >> 6)]) }
            if remaining > 2 { out.append(alphabet[b2 & 0x3f]) }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes unpadded canonical base64; nil for anything else (padding, other characters, CR, a dangling
    /// character, non-zero unused bits).
    static func decode<C: Collection>(_ text: C) -> [UInt8]? where C.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(text.count * 3 / 4)
        var accumulator: UInt32 = 0
        var count = 0
        for character in text {
            let value = values[Int(character)]
            guard value >= 0 else { return nil }
            accumulator = accumulator << 6 | UInt32(value)
            count += 1
            if count == 4 {
                out.append(UInt8(accumulator >> 16))
                out.append(UInt8((accumulator >> 8) & 0xff))
                out.append(UInt8(accumulator & 0xff))
                accumulator = 0
                count = 0
            }
        }
        switch count {
        case 0:
            break
        case 2:
            guard accumulator & 0x0f == 0 else { return nil }
            out.append(UInt8(accumulator >> 4))
        case 3:
            guard accumulator & 0x03 == 0 else { return nil }
            out.append(UInt8(accumulator >> 10))
            out.append(UInt8((accumulator >> 2) & 0xff))
        default:
            return nil
        }
        return out
    }
}
