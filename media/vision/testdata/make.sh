#!/bin/sh
# Regenerates the face fixtures from two public-domain photos that ship in
# Debian's python3-skimage (astronaut.png, a portrait; coffee.png, no face):
#   face-*.jpg   one still per segment kind (640x480)
#   face.ivf     VP8, 2 s per segment, a key frame every 10 frames (server tests)
#   face.mjpeg   the same sequence for Chromium's fake camera (it plays at 30 fps)
# Each frame carries a 32x32 marker in its top-left corner whose colour names
# its segment, so a test can tell which segment a still came from.
# Needs ImageMagick (convert), ffmpeg, and apt-get (or SKIMAGE=dir with the photos).
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -z "${SKIMAGE:-}" ]; then
	(cd "$tmp" && apt-get download python3-skimage >/dev/null && dpkg -x python3-skimage_*.deb x)
	SKIMAGE=$tmp/x/usr/lib/python3/dist-packages/skimage/data
fi
a=$SKIMAGE/astronaut.png
bg='#7f7f7f'
# The portrait framed as a webcam sees it: the top 512x384, scaled to 640x480.
convert "$a" -crop 512x384+0+0 +repage "$tmp/top.png"
mark() { convert "$1" -resize 640x480 -background "$bg" -gravity center -extent 640x480 -fill "$2" -draw 'rectangle 0,0 31,31' -quality 92 "$3"; }
mark "$tmp/top.png" '#00ff00' face-clean.jpg
mark "$SKIMAGE/coffee.png" '#ff0000' face-none.jpg
convert "$tmp/top.png" \( "$tmp/top.png" -flop \) +append "$tmp/two.png"
mark "$tmp/two.png" '#0000ff' face-two.jpg
# Mouth and chin covered: a skin-coloured ellipse and a rounded "hand".
convert "$tmp/top.png" -fill '#d8a488' -draw 'ellipse 222,150 40,24 0,360' -draw 'roundrectangle 178,158 268,196 14,14' "$tmp/cover.png"
mark "$tmp/cover.png" '#ff00ff' face-covered.jpg
# Head turned: eyes, nose and mouth moved towards one cheek, the outline kept,
# as a head turned to its left looks from the front.
convert "$tmp/top.png" -distort Shepards '200,98 230,98  247,98 275,98  222,120 262,120  222,145 257,145  175,120 175,120  280,120 281,120  222,60 222,60  222,190 240,190  160,60 160,60  290,60 290,60  160,200 160,200  290,200 290,200' "$tmp/turn.png"
mark "$tmp/turn.png" '#ffff00' face-turned.jpg
# The same clean face in other light: darker, warmer, less contrast.
convert "$tmp/top.png" -modulate 65,90,100 -brightness-contrast -5x-20 -fill '#ff9933' -colorize 8% "$tmp/dim.png"
mark "$tmp/dim.png" '#00ffff' face-dim.jpg
# The sequence: clean segments (one in other light) between the others, so
# every event has an end.
list=$tmp/list.txt
: >"$list"
for s in clean none clean two clean covered dim turned; do
	printf "file '%s/face-%s.jpg'\nduration 2\n" "$PWD" "$s" >>"$list"
done
printf "file '%s/face-turned.jpg'\n" "$PWD" >>"$list"
ffmpeg -v error -y -f concat -safe 0 -i "$list" -vf fps=30,format=yuv420p -c:v libvpx -b:v 600k -g 10 -auto-alt-ref 0 -f ivf face.ivf
ffmpeg -v error -y -f concat -safe 0 -i "$list" -vf fps=30,scale=320:240 -pix_fmt yuvj420p -c:v mjpeg -q:v 20 -f mjpeg face.mjpeg
ls -l face*
