package bind

// wordList holds the 256 words of the short authentication string, one per
// byte value. The list was written for this package. Every word is 4 to 8
// lower case letters, and no two words share their first three letters, so
// a word is known from its first three letters even when misheard or
// mistyped. The order is part of the SAS definition (changing it changes
// every SAS): never reorder or edit it; a new list needs a new SAS label.
var wordList = [256]string{
	"acorn", "album", "amber", "anchor", "apple", "apron", "arrow", "atlas",
	"attic", "autumn", "avenue", "bacon", "badge", "bagel", "baker", "balloon",
	"bamboo", "banjo", "barley", "basket", "beacon", "bench", "berry", "bison",
	"blanket", "blossom", "bonnet", "bottle", "bread", "bridge", "broom", "bubble",
	"bucket", "buffalo", "bugle", "button", "cabin", "cactus", "camel", "candle",
	"carrot", "castle", "cedar", "cherry", "circus", "clover", "cobalt", "cocoa",
	"comet", "copper", "coral", "cotton", "cougar", "crayon", "cricket", "crystal",
	"curtain", "daisy", "dancer", "denim", "desert", "diamond", "dinner", "dolphin",
	"domino", "donkey", "dragon", "eagle", "easel", "echo", "emerald", "engine",
	"fabric", "falcon", "feather", "ferry", "fiddle", "finch", "flame", "flute",
	"forest", "fossil", "fountain", "frost", "gadget", "galaxy", "garden", "gazelle",
	"gecko", "geyser", "ginger", "giraffe", "glacier", "globe", "goblet", "gravel",
	"guitar", "hammer", "harbor", "hazel", "helmet", "heron", "honey", "hornet",
	"hotel", "igloo", "island", "ivory", "icicle", "indigo", "jacket", "jaguar",
	"jasmine", "jelly", "jester", "jigsaw", "jungle", "kayak", "kettle", "kitten",
	"koala", "ladder", "lagoon", "lantern", "laptop", "lemon", "lentil", "leopard",
	"lilac", "linen", "lizard", "lobster", "locket", "lotus", "magnet", "mango",
	"maple", "marble", "meadow", "melon", "mitten", "monkey", "muffin", "mustard",
	"napkin", "nectar", "needle", "nickel", "noodle", "nugget", "nutmeg", "oasis",
	"ocean", "olive", "onion", "orange", "orbit", "orchid", "otter", "oyster",
	"paddle", "palace", "panda", "paper", "parrot", "pastry", "peach", "pebble",
	"pelican", "pepper", "piano", "pickle", "pigeon", "pillow", "planet", "pocket",
	"poppy", "potato", "prism", "puddle", "pumpkin", "puzzle", "quail", "quill",
	"rabbit", "radish", "rainbow", "ranch", "raven", "ribbon", "riddle", "rocket",
	"rooster", "ruby", "saddle", "salmon", "sandal", "satin", "scarf", "seagull",
	"sesame", "shovel", "silver", "slipper", "snail", "socket", "spider", "sponge",
	"squid", "statue", "summit", "sunset", "sweater", "tablet", "tadpole", "tango",
	"teapot", "temple", "thunder", "ticket", "tiger", "timber", "toast", "tomato",
	"topaz", "torch", "tractor", "trumpet", "tulip", "tundra", "turtle", "unicorn",
	"urchin", "valley", "vanilla", "velvet", "violin", "volcano", "voyage", "waffle",
	"wagon", "walnut", "weasel", "whale", "whistle", "willow", "window", "wizard",
	"wombat", "yacht", "yarn", "yogurt", "zebra", "zenith", "zigzag", "zipper",
}
