import Foundation
import Testing

@testable import BackupStorage

/// The `Date` header a bucket's clock is read from, parsed by position.
struct HTTPDateTests {
    @Test func rfcExample() {
        #expect(S3Storage.parseHTTPDate("Sun, 06 Nov 1994 08:49:37 GMT") == Date(timeIntervalSince1970: 784_111_777))
        #expect(S3Storage.parseHTTPDate(" Thu, 01 Jan 1970 00:00:00 GMT ") == Date(timeIntervalSince1970: 0))
        #expect(S3Storage.parseHTTPDate("Tue, 29 Feb 2000 23:59:59 GMT") == Date(timeIntervalSince1970: 951_868_799))
    }

    @Test("agrees with Foundation's formatter on dates from 1970 to 2200")
    func agreesWithFormatter() {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let date = Date(timeIntervalSince1970: TimeInterval(Int64.random(in: 0...7_258_118_400, using: &generator)))
            #expect(S3Storage.parseHTTPDate(formatter.string(from: date)) == date, "\(formatter.string(from: date))")
        }
    }

    @Test(arguments: [
        "", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 32 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 19x4 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT\u{0}", "Sun, -6 Nov 1994 08:49:37 GMT",
    ])
    func refuses(_ text: String) {
        #expect(S3Storage.parseHTTPDate(text) == nil)
    }
}
