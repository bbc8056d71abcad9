// libFuzzer target: S3's XML answers (listing pages, multipart upload listings, error bodies).
@testable import BackupStorage

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzS3XML(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let body = Array(UnsafeBufferPointer(start: data, count: size))
    if let page = S3ListPage.parse(body, prefix: "site/") {
        precondition(page.objects.allSatisfy { $0.size >= 0 })
    }
    _ = S3ListPage.parse(body, prefix: "")
    _ = S3UploadsPage.parse(body)
    // What the client reads from an error answer: `<Error><Code>` and `<Message>`.
    _ = S3XMLElement.parse(body).flatMap { $0.name == "Error" ? ($0.value("Code"), $0.value("Message")) : nil }
    return 0
}
