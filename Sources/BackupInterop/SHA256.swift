import BackupCore
import COpenSSL

/// An incremental SHA-256 over OpenSSL's EVP interface. Owns one `EVP_MD_CTX`.
public final class SHA256 {
    private let context: OpaquePointer

    public init() {
        // EVP_MD_CTX_new fails only when memory is exhausted; there is nothing sensible to do then.
        guard let context = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new: out of memory") }
        self.context = context
        let ok = EVP_DigestInit_ex(context, EVP_sha256(), nil)
        precondition(ok == 1, "EVP_DigestInit_ex(sha256) failed: \(OpenSSLError.drain())")
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        let ok = EVP_DigestUpdate(context, base, bytes.count)
        precondition(ok == 1, "EVP_DigestUpdate failed: \(OpenSSLError.drain())")
    }

    public func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    public func update(_ text: String) { update(Array(text.utf8)) }

    /// The digest as lowercase hex. The hash cannot be updated afterwards.
    public func finalizeHex() -> String {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = EVP_DigestFinal_ex(context, &digest, &length)
        precondition(ok == 1, "EVP_DigestFinal_ex failed: \(OpenSSLError.drain())")
        return Hex.encode(digest.prefix(Int(length)))
    }

    public static func hex(of bytes: [UInt8]) -> String {
        let hash = SHA256()
        hash.update(bytes)
        return hash.finalizeHex()
    }
}

/// Lowercase hex encoding.
public enum Hex {
    public static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// OpenSSL's thread-local error queue, turned into text naming the failing function.
enum OpenSSLError {
    static func drain() -> String {
        var messages: [String] = []
        while case let code = ERR_get_error(), code != 0 {
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            messages.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return messages.isEmpty ? "no OpenSSL error recorded" : messages.joined(separator: "; ")
    }
}

/// A sink that hashes and counts what passes through on its way to another sink.
public final class HashingSink: ByteSink {
    private let next: any ByteSink
    private let hash = SHA256()
    public private(set) var count: Int64 = 0

    public init(_ next: any ByteSink) { self.next = next }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try next.write(bytes)
        hash.update(bytes)
        count += Int64(bytes.count)
    }

    public func finalizeHex() -> String { hash.finalizeHex() }
}

/// A source that hashes and counts what passes through.
public final class HashingSource: ByteSource {
    private let next: any ByteSource
    private let hash = SHA256()
    public private(set) var count: Int64 = 0

    public init(_ next: any ByteSource) { self.next = next }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = try next.read(into: buffer)
        hash.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        count += Int64(n)
        return n
    }

    public func finalizeHex() -> String { hash.finalizeHex() }
}
