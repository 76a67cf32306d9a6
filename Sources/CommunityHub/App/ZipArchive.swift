import Foundation

/// A ZIP file of stored (not deflated) entries: what staff download with a month's PDFs, which are
/// compressed already. Plain ZIP (PKWARE APPNOTE 4.3), readable by every system's unzip.
package struct ZipArchive {
    private var data = Data()
    private var central = Data()
    private var count: UInt16 = 0

    package init() {}

    package mutating func add(name: String, contents: Data) {
        let nameBytes = Array(name.utf8)
        let crc = ZipArchive.crc32(contents)
        let offset = UInt32(data.count)
        // Local file header.
        data.append(le32(0x0403_4B50)); data.append(le16(20)); data.append(le16(0x0800)); data.append(le16(0))
        data.append(le16(0)); data.append(le16(0x21))  // time, date: 1980-01-01, so the same files give the same ZIP
        data.append(le32(crc)); data.append(le32(UInt32(contents.count))); data.append(le32(UInt32(contents.count)))
        data.append(le16(UInt16(nameBytes.count))); data.append(le16(0))
        data.append(contentsOf: nameBytes)
        data.append(contents)
        // Its central directory record.
        central.append(le32(0x0201_4B50)); central.append(le16(20)); central.append(le16(20)); central.append(le16(0x0800)); central.append(le16(0))
        central.append(le16(0)); central.append(le16(0x21))
        central.append(le32(crc)); central.append(le32(UInt32(contents.count))); central.append(le32(UInt32(contents.count)))
        central.append(le16(UInt16(nameBytes.count))); central.append(le16(0)); central.append(le16(0)); central.append(le16(0)); central.append(le16(0))
        central.append(le32(0)); central.append(le32(offset))
        central.append(contentsOf: nameBytes)
        count += 1
    }

    package func finished() -> Data {
        var out = data
        out.append(central)
        out.append(le32(0x0605_4B50)); out.append(le16(0)); out.append(le16(0)); out.append(le16(count)); out.append(le16(count))
        out.append(le32(UInt32(central.count))); out.append(le32(UInt32(data.count))); out.append(le16(0))
        return out
    }

    static let table: [UInt32] = (0..<256).map { index in
        var c = UInt32(index)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    package static func crc32(_ data: Data) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in data { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}

private func le16(_ value: UInt16) -> Data { withUnsafeBytes(of: value.littleEndian) { Data($0) } }
private func le32(_ value: UInt32) -> Data { withUnsafeBytes(of: value.littleEndian) { Data($0) } }
