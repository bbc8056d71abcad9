import BackupCore
import Foundation
import Testing
import TestSupport

@testable import BackupStorage

/// S3's XML answers as the bucket store reads them: whatever the server sends, a page or nil, never a trap or
/// a loop. The fuzz target `s3-xml` (fuzz/run.sh) feeds the same readers arbitrary bytes.
@Suite("Reading S3's XML answers")
struct S3XMLTests {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test("a ListObjectsV2 page: objects under the prefix, sizes, dates and the next page's token")
    func listPage() throws {
        let page = try #require(
            S3ListPage.parse(
                Self.bytes(
                    """
                    <?xml version="1.0" encoding="UTF-8"?>
                    <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
                      <Name>backups</Name><Prefix>site/</Prefix><KeyCount>4</KeyCount><MaxKeys>1000</MaxKeys>
                      <IsTruncated>true</IsTruncated><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
                      <Contents><Key>site/visual_backup_2025-01-15_14-30-00.tar.gz</Key>
                        <LastModified>2025-01-15T14:31:02.000Z</LastModified><ETag>"9b2cf535f27731c974343645a3985328"</ETag>
                        <Size>524288000</Size><StorageClass>STANDARD</StorageClass></Contents>
                      <Contents><Key>site/a &amp; b.json</Key><LastModified>2025-01-15T14:31:03Z</LastModified><Size>-7</Size></Contents>
                      <Contents><Key>other/x</Key><Size>1</Size></Contents>
                      <Contents><Key>site/no-size</Key><Size>many</Size><LastModified>yesterday</LastModified></Contents>
                    </ListBucketResult>
                    """), prefix: "site/"))
        #expect(page.objects.map(\.name) == ["visual_backup_2025-01-15_14-30-00.tar.gz", "a & b.json", "no-size"])
        // A negative or unreadable size counts as 0, an unreadable date as the epoch.
        #expect(page.objects.map(\.size) == [524_288_000, 0, 0])
        #expect(page.objects[0].modified == Date(timeIntervalSince1970: 1_736_951_462))
        #expect(page.objects[1].modified == Date(timeIntervalSince1970: 1_736_951_463))
        #expect(page.objects[2].modified == Date(timeIntervalSince1970: 0))
        #expect(page.next == "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")

        let last = try #require(S3ListPage.parse(Self.bytes("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>"), prefix: ""))
        #expect(last.objects.isEmpty && last.next == nil)
    }

    // Found by the s3-xml fuzz target: ISO8601DateFormatter (ICU) died of SIGFPE on this fraction.
    @Test("dates S3 would not write are read as unknown, never a trap")
    func hostileDates() throws {
        let fraction = "2026-12-06T05:51:28." + String(repeating: "8", count: 96) + "000Z"
        for date in [fraction, "2026-12-06T05:51:28.1234567890Z", "2026-13-45T99:99:99Z", "0000-00-00T00:00:00Z", ""] {
            let body = "<ListBucketResult><Contents><Key>k</Key><LastModified>\(date)</LastModified></Contents></ListBucketResult>"
            let page = try #require(S3ListPage.parse(Self.bytes(body), prefix: ""))
            #expect(page.objects.count == 1, "\(date)")
        }
        let body = "<ListBucketResult><Contents><Key>k</Key><LastModified>\(fraction)</LastModified></Contents></ListBucketResult>"
        #expect(try #require(S3ListPage.parse(Self.bytes(body), prefix: "")).objects[0].modified == Date(timeIntervalSince1970: 0))
    }

    @Test("what is not a listing is nil: another root, not XML, cut XML, nothing at all")
    func notAListing() {
        for body in [
            "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>", "{\"json\": true}",
            "<ListBucketResult><Contents><Key>a</Key>", "", "\u{0}\u{ff}<",
        ] {
            #expect(S3ListPage.parse(Self.bytes(body), prefix: "") == nil, "\(body)")
        }
        #expect(S3XMLElement.parse(Self.bytes("<Error><Code>SlowDown</Code></Error>"))?.value("Code") == "SlowDown")
    }

    @Test("a ListMultipartUploads page: uploads with a key and an ID, and both markers of the next page")
    func uploadsPage() throws {
        let page = try #require(
            S3UploadsPage.parse(
                Self.bytes(
                    """
                    <ListMultipartUploadsResult><IsTruncated>true</IsTruncated>
                      <NextKeyMarker>site/b</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker>
                      <Upload><Key>site/a</Key><UploadId>u1</UploadId></Upload>
                      <Upload><Key>site/no-id</Key></Upload>
                    </ListMultipartUploadsResult>
                    """)))
        #expect(page.uploads.map(\.key) == ["site/a"] && page.uploads.map(\.id) == ["u1"])
        #expect(page.next?.key == "site/b" && page.next?.upload == "u2")
        let halfMarked = S3UploadsPage.parse(
            Self.bytes("<R><IsTruncated>true</IsTruncated><NextKeyMarker>k</NextKeyMarker></R>"))
        #expect(halfMarked != nil && halfMarked?.next == nil)
    }

    @Test("entities that expand a billion times are refused, not expanded", .timeLimit(.minutes(1)))
    func billionLaughs() {
        var document = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY l0 \"lol\">"
        for level in 1...9 {
            document += "<!ENTITY l\(level) \"" + String(repeating: "&l\(level - 1);", count: 10) + "\">"
        }
        document += "]><ListBucketResult><Contents><Key>&l9;</Key></Contents></ListBucketResult>"
        #expect(S3ListPage.parse(Self.bytes(document), prefix: "") == nil)
    }

    @Test("entities, character references, CDATA and line ends are read as XML defines them")
    func text() throws {
        let document = """
            \u{FEFF}<?xml version="1.0" encoding="UTF-8"?>
            <!-- a comment --><Error xmlns='http://s3.amazonaws.com/doc/2006-03-01/'>
              <Code>Access&#68;enied</Code><Message>a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos; &#x1F600; é\r\nx\ry</Message>
              <Key><![CDATA[<raw> & ]]></Key><Empty/><Spaced attr = "1" other='&amp;' ></Spaced >
            </Error>
            """
        let root = try #require(S3XMLElement.parse(Self.bytes(document)))
        #expect(root.name == "Error")
        #expect(root.value("Code") == "AccessDenied")
        #expect(root.value("Message") == "a <b> & \"c\" 'd' \u{1F600} é\nx\ny")
        #expect(root.value("Key") == "<raw> & ")
        #expect(root.value("Empty") == "" && root.value("Spaced") == "")
        #expect(root.children.map(\.name) == ["Code", "Message", "Key", "Empty", "Spaced"])
    }

    // The crash the fuzz target found: swift-corelibs-foundation's XMLParser force-unwrapped an element name
    // libxml2 passed on as invalid UTF-8, and trapped (SIGILL) on this error body.
    @Test("what is not well-formed UTF-8 XML is nil, never a trap", arguments: [
        [0x3C, 0xFF, 0xF7, 0xFF, 0xF7, 0x04, 0xF7, 0x00, 0x02, 0xF7, 0xF7, 0x0A, 0x00, 0xF7, 0xF7, 0x00],
        Array("<a><b></a></b>".utf8), Array("<a>&unknown;</a>".utf8), Array("<a>&#0;</a>".utf8),
        Array("<a>&#xD800;</a>".utf8), Array("<a>&#-1;</a>".utf8), Array("<a>&#x110000;</a>".utf8),
        Array("<a b=\"1\"c=\"2\"></a>".utf8), Array("<a b=\"<\"></a>".utf8), Array("<a></a><b></b>".utf8),
        Array("<a></a>trailing".utf8), Array("<a><![CDATA[never closed</a>".utf8), Array("<a><!-- never closed".utf8),
        Array("<a".utf8), Array("<>".utf8), Array("</a>".utf8),
    ] as [[UInt8]])
    func malformed(_ body: [UInt8]) {
        #expect(S3XMLElement.parse(body) == nil)
    }

    @Test("nesting is bounded: a document a hundred thousand levels deep is refused without exhausting the stack")
    func depth() throws {
        let deep = String(repeating: "<a>", count: 100_000) + String(repeating: "</a>", count: 100_000)
        #expect(S3XMLElement.parse(Self.bytes(deep)) == nil)
        let depth = S3XMLReader.maximumDepth
        let deepest = String(repeating: "<a>", count: depth) + "x" + String(repeating: "</a>", count: depth)
        var element = try #require(S3XMLElement.parse(Self.bytes(deepest)))
        while let child = element.children.first { element = child }
        #expect(element.text == "x")
    }

    /// A server on 127.0.0.1 whose every listing page says "truncated, next page: `again`": the token of the page
    /// just read. Listing objects and uploads must stop with an error instead of asking for it forever.
    @Test("a listing whose pages lead back to one already read is an error, not an endless loop", .timeLimit(.minutes(1)))
    func circularListing() async throws {
        let port = try FreePort.pick()
        let script = """
            import http.server, sys
            class Handler(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    if 'uploads' in self.path:
                        body = (b'<ListMultipartUploadsResult><IsTruncated>true</IsTruncated><NextKeyMarker>k</NextKeyMarker>'
                                b'<NextUploadIdMarker>u</NextUploadIdMarker></ListMultipartUploadsResult>')
                    else:
                        body = (b'<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>again'
                                b'</NextContinuationToken><Contents><Key>a</Key><Size>1</Size></Contents></ListBucketResult>')
                    self.send_response(200)
                    self.send_header('Content-Length', str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                def log_message(self, *args):
                    pass
            http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), Handler).serve_forever()
            """
        let server = try ProcessRunner.launch("python3", ["-c", script, String(port)])
        defer { server.kill(SIGKILL) }
        try await eventually("the listing server to listen") { FreePort.isAcceptingConnections(port: port) }
        let storage = try S3Storage.open(
            S3Configuration(
                bucket: "backups", prefix: "", endpoint: "http://127.0.0.1:\(port)", accessKeyID: "AKIDEXAMPLE",
                secretAccessKey: "not-a-secret", retries: 0),
            coordinating: false)
        let listing = try #require(throws: ContingencyError.self) { try storage.list(folder: "") }
        #expect(listing.message.contains("lead back to a page already read"), "\(listing)")
        let uploads = try #require(throws: ContingencyError.self) { try storage.abortInterruptedUploads { _ in true } }
        #expect(uploads.message.contains("lead back to a page already read"), "\(uploads)")
    }
}
