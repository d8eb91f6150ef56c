// The printable certificate: the print button opens the browser's print
// dialogue; the print stylesheet lays the page out on A4.
document.getElementById('print')?.addEventListener('click', () => window.print());
