import BackupInterop
import Testing

/// The OpenSSL-backed HMAC against RFC 4231 section 4 (test cases 1 and 2, HMAC-SHA-256 rows),
/// https://datatracker.ietf.org/doc/html/rfc4231#section-4.2
@Suite("HMAC-SHA-256")
struct HMACTests {
    @Test("RFC 4231 test case 1: 20-byte key of 0x0b, \"Hi There\"")
    func testCase1() {
        let code = HMACSHA256.authenticationCode(
            key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8))
        #expect(Hex.encode(code) == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    }

    @Test("RFC 4231 test case 2: key \"Jefe\", a key shorter than the digest")
    func testCase2() {
        let code = HMACSHA256.authenticationCode(
            key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        #expect(Hex.encode(code) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    /// Not in RFC 4231: the expected value is Python's `hmac.new(b"", b"", hashlib.sha256)`, an independent
    /// implementation. It checks that empty buffers reach OpenSSL as empty, not as "no key".
    @Test("An empty key and an empty message")
    func emptyInputs() {
        let code = HMACSHA256.authenticationCode(key: [], message: [])
        #expect(Hex.encode(code) == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
    }
}
